// Goal: a kill -9 at a random moment under load loses nothing acknowledged and invents nothing
// (CONTRACT.md "Usage": "A 200 is sent only once the change is durable: a kill -9 right after it loses
// nothing"). Several threads charge events while the server is killed after a random number of
// answers; after each restart every event acknowledged as accepted is still charged exactly once, the
// balances lie between "every unanswered event was lost" and "every unanswered event committed",
// and the offline audit agrees, also once the journal is trimmed and the audit starts from its base.
// Several rounds, one data folder; the seed is printed.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "tests/e2e/harness.hpp"

namespace canopy::test {
namespace {

namespace json = boost::json;
using SteadyClock = std::chrono::steady_clock;

constexpr std::int64_t free_credits = 5'000'000;
constexpr int charging_threads = 4;
constexpr int rounds_min = 3;
constexpr int rounds_max = 5;
constexpr std::chrono::seconds no_new_round_after{35};   // with the last round, about 60 s in all
constexpr std::chrono::seconds charging_per_round_max{6};
constexpr int answers_before_kill_max = 400;
constexpr std::size_t earlier_retries_per_round_max = 200;
constexpr std::int64_t limit_a_micros = 150'000'000;

// The fixed tree: root > a > b (consolidated), root > s (pays for itself), and another tenant's root.
enum OrgIndex : int { root = 0, a = 1, b = 2, s = 3, other = 4, org_count = 5 };
constexpr int payer_of[org_count] = {root, root, root, s, other};
// The chain of each org up to its payer: the orgs whose cycle spend an event there adds to.
const std::vector<int> chain_of[org_count] = {{root}, {a, root}, {b, a, root}, {s}, {other}};

struct Event {
  int org = 0;
  std::string id;
  std::int64_t cost = 0;
  bool retry = false;
};

// What one thread learned in one round.
struct Learned {
  std::vector<std::pair<Event, std::string>> accepted;  // with the payer it was answered with
  std::vector<Event> refused;
  std::vector<Event> unanswered;                        // sent, and the answer lost in the kill
  bool limit_refusal_at_a = false;
  std::vector<std::string> problems;
};

json::value usage_body(const Event& e) {
  return {{"id", e.id}, {"type", "assistants.reply"}, {"quantity", 1}, {"cost_micros", e.cost}};
}

// The test's ledger: everything it knows was decided.
struct Ledger {
  std::vector<std::string> ids;                       // org ids by OrgIndex
  std::int64_t credits[org_count] = {};               // free credits and grants
  std::map<std::string, Event> accepted;              // "org/id" -> the event, charged once
  std::map<std::string, Event> decided_refused;       // refused at its last answer
  std::map<std::string, Event> unanswered;            // may or may not have committed

  static std::string key(const Event& e) { return std::to_string(e.org) + "/" + e.id; }
  std::int64_t paid(int payer) const {
    std::int64_t sum = 0;
    for (const auto& [k, e] : accepted) sum += payer_of[e.org] == payer ? e.cost : 0;
    return sum;
  }
  std::int64_t spend_through(int org, const std::map<std::string, Event>& events) const {
    std::int64_t sum = 0;
    for (const auto& [k, e] : events) {
      const auto& chain = chain_of[e.org];
      if (std::find(chain.begin(), chain.end(), org) != chain.end()) sum += e.cost;
    }
    return sum;
  }
  std::vector<Event> pool() const {
    std::vector<Event> out;
    for (const auto& [k, e] : accepted) out.push_back(e);
    for (const auto& [k, e] : decided_refused) out.push_back(e);
    return out;
  }
};

class Round {
 public:
  Round(std::uint16_t port, const Ledger& ledger, int round, std::uint64_t seed)
      : port_(port), ledger_(ledger), round_(round), seed_(seed), pool_(ledger.pool()) {}

  // Charges from several threads until `answers` have come back, then lets `kill` stop the server.
  std::vector<Learned> run(int answers, const std::function<void()>& kill) {
    std::vector<Learned> learned(charging_threads);
    std::vector<std::thread> threads;
    for (int t = 0; t < charging_threads; ++t) {
      threads.emplace_back([this, t, &learned] { charge(t, learned[static_cast<std::size_t>(t)]); });
    }
    {
      std::unique_lock lock(mutex_);
      answered_.wait_until(lock, SteadyClock::now() + charging_per_round_max, [&] { return answers_ >= answers; });
    }
    killing_ = true;
    kill();
    for (auto& t : threads) t.join();
    return learned;
  }

 private:
  void charge(int thread, Learned& out) {
    std::mt19937_64 rng(seed_ + static_cast<std::uint64_t>(thread));
    Client client(port_);
    int n = 0;
    const auto give_up = SteadyClock::now() + charging_per_round_max + std::chrono::seconds(5);
    auto next = [&] {
      Event e;
      if (!pool_.empty() && rng() % 10 == 0) {
        e = pool_[rng() % pool_.size()];
        e.retry = true;
        return e;
      }
      e.org = static_cast<int>(rng() % org_count);
      char id[64];
      std::snprintf(id, sizeof id, "r%dt%dn%d", round_, thread, n++);
      e.id = id;
      e.cost = 1'000 + static_cast<std::int64_t>(rng() % 1'500'000);
      return e;
    };
    // The server dies under us: the request in flight throws, and its events are unanswered.
    while (SteadyClock::now() < give_up) {
      const std::size_t size = rng() % 8 == 0 ? 2 + rng() % 4 : 1;
      std::vector<Event> events;
      for (std::size_t i = 0; i < size; ++i) events.push_back(next());
      HttpResult r;
      try {
        if (size == 1) {
          r = client.post("/v1/orgs/" + ledger_.ids[static_cast<std::size_t>(events[0].org)] + "/usage",
                          usage_body(events[0]));
        } else {
          json::array items;
          for (const auto& e : events) {
            json::value item = usage_body(e);
            item.as_object()["org_id"] = ledger_.ids[static_cast<std::size_t>(e.org)];
            items.push_back(std::move(item));
          }
          r = client.post("/v1/usage:batch", {{"events", items}});
        }
      } catch (const std::exception& e) {
        if (!killing_) out.problems.push_back(std::string("the server stopped answering before the kill: ") + e.what());
        out.unanswered.insert(out.unanswered.end(), events.begin(), events.end());
        return;
      }
      if (r.status == 503) {  // no decision learned: like an answer lost in the kill
        out.unanswered.insert(out.unanswered.end(), events.begin(), events.end());
        continue;
      }
      learn(events, r, out);
      {
        std::lock_guard lock(mutex_);
        ++answers_;
      }
      answered_.notify_all();
    }
    out.problems.push_back("the server was not killed in time");
  }

  void learn(const std::vector<Event>& events, const HttpResult& r, Learned& out) {
    const auto body = r.json();
    auto decide = [&](const Event& e, bool accepted, const std::string& payer, const std::string& code,
                      const std::string& org) {
      if (!accepted && ledger_.accepted.count(Ledger::key(e))) {
        out.problems.push_back("event " + e.id + ", acknowledged as accepted before, now answered " + code);
      }
      if (accepted) {
        out.accepted.emplace_back(e, payer);
      } else if (code == "spending_limit_reached" || code == "insufficient_credits" || (code == "conflict" && e.retry)) {
        out.refused.push_back(e);
        if (code == "spending_limit_reached" && org == ledger_.ids[a]) out.limit_refusal_at_a = true;
      } else {
        out.problems.push_back("event " + e.id + " refused with " + code + ": " + r.body);
      }
    };
    if (events.size() == 1) {
      std::string org;
      if (body.is_object() && body.as_object().contains("error")) {
        const auto& details = body.at("error").at("details");
        if (details.is_object() && details.as_object().contains("org_id")) org = std::string(details.at("org_id").as_string());
      }
      if (r.status == 200) {
        decide(events[0], true, json_str(body, {"payer_org_id"}), "", "");
      } else {
        decide(events[0], false, "", r.error_code(), org);
      }
      return;
    }
    if (r.status != 200 || !body.is_object() || body.at("results").as_array().size() != events.size()) {
      out.problems.push_back("usage:batch answered " + std::to_string(r.status) + ": " + r.body);
      return;
    }
    const auto& results = body.at("results").as_array();
    for (std::size_t i = 0; i < events.size(); ++i) {
      const auto& row = results[i];
      const bool accepted = json_str(row, {"status"}) == "accepted";
      decide(events[i], accepted, accepted ? json_str(row, {"payer_org_id"}) : "",
             accepted ? "" : json_str(row, {"code"}),
             row.as_object().contains("org_id") ? json_str(row, {"org_id"}) : "");
    }
  }

  std::uint16_t port_;
  const Ledger& ledger_;
  int round_;
  std::uint64_t seed_;
  std::vector<Event> pool_;
  std::mutex mutex_;
  std::condition_variable answered_;
  int answers_ = 0;
  std::atomic<bool> killing_{false};
};

json::value billing(Client& op, const std::string& org) {
  auto r = op.get("/v1/orgs/" + org + "/billing");
  EXPECT_EQ(r.status, 200u) << r.body;
  return r.json();
}

TEST(Crash, Kill9UnderLoadLosesNothingAcknowledgedAndChargesNothingTwice) {
  std::uint64_t seed = std::random_device{}();
  if (const char* env = std::getenv("CANOPY_TEST_SEED")) seed = std::stoull(env);
  std::cout << "seed " << seed << " (set CANOPY_TEST_SEED to repeat the choices)" << std::endl;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const auto started = SteadyClock::now();

  TempDir dir;
  // The manual clock, set once to the middle of next month, keeps every round in one billing cycle.
  // Checkpoints every 500 ms rather than 5 s, so that the journal is trimmed in every round (a trim
  // round follows the checkpoints) and the kills land among trims as well as checkpoints.
  CanopyProcess server(dir.str("data"), {"--clock", "manual", "--checkpoint-interval-ms", "500"});
  server.start();
  Ledger ledger;
  {
    Client op(server.port());
    const auto owner = create_user(op, "owner@example.com", "Owner");
    const auto other_owner = create_user(op, "other@example.com", "Other");
    Client admin(server.port(), owner.token);
    ledger.ids.resize(org_count);
    ledger.ids[root] = create_root(op, owner.id, "business", "Agency");
    ledger.ids[a] = create_sub_org(admin, ledger.ids[root], "A");
    ledger.ids[b] = create_sub_org(admin, ledger.ids[a], "B");
    ledger.ids[s] = create_sub_org(admin, ledger.ids[root], "S");
    ledger.ids[other] = create_root(op, other_owner.id, "business", "Other");
    ASSERT_EQ(op.put("/v1/orgs/" + ledger.ids[s] + "/billing/consolidated", {{"enabled", false}}).status, 200u);
    ASSERT_EQ(op.put("/v1/orgs/" + ledger.ids[a] + "/billing/spending-limit", {{"monthly_limit_micros", limit_a_micros}}).status, 200u);
    const auto end = json_str(billing(op, ledger.ids[root]), {"cycle", "end"});
    ASSERT_EQ(op.post("/v1/admin/clock", {{"now", end.substr(0, 8) + "15T12:00:00Z"}}).status, 200u);
    ledger.credits[root] = 2 * free_credits;  // at creation, and for the cycle the clock moved into
    ledger.credits[other] = 2 * free_credits;
    for (const int org : {root, s, other}) {
      const std::int64_t amount = org == s ? 100'000'000 : 400'000'000;
      grant(op, ledger.ids[static_cast<std::size_t>(org)], amount);
      ledger.credits[org] += amount;
    }
    ASSERT_FALSE(::testing::Test::HasFailure());
  }

  int rounds = 0;
  bool a_refused_at_limit = false;
  bool audited_from_a_base = false;  // some audit started from the trimmed journal's base
  while (rounds < rounds_max && (rounds < rounds_min || SteadyClock::now() - started < no_new_round_after)) {
    const int answers = 20 + static_cast<int>(rng() % answers_before_kill_max);
    SCOPED_TRACE("round " + std::to_string(rounds) + ", killed after " + std::to_string(answers) + " answers");
    Round round(server.port(), ledger, rounds, rng());
    const auto learned = round.run(answers, [&] { server.kill9(); });
    ++rounds;

    // Fold what the threads learned into the ledger.
    std::map<std::string, std::int64_t> acknowledged_this_round;
    for (const auto& l : learned) {
      for (const auto& p : l.problems) ADD_FAILURE() << p;
      a_refused_at_limit = a_refused_at_limit || l.limit_refusal_at_a;
      for (const auto& [e, payer] : l.accepted) {
        EXPECT_EQ(payer, ledger.ids[static_cast<std::size_t>(payer_of[e.org])]) << "event " << e.id;
        ledger.accepted[Ledger::key(e)] = e;
        ledger.decided_refused.erase(Ledger::key(e));
        ledger.unanswered.erase(Ledger::key(e));
        acknowledged_this_round[Ledger::key(e)] = e.cost;
      }
    }
    // Accepted beats unanswered (another request for the same id was answered), which beats refused
    // (a refused id may have been sent again and lost).
    for (const auto& l : learned) {
      for (const auto& e : l.unanswered) {
        if (ledger.accepted.count(Ledger::key(e))) continue;
        ledger.unanswered[Ledger::key(e)] = e;
        ledger.decided_refused.erase(Ledger::key(e));
      }
    }
    for (const auto& l : learned) {
      for (const auto& e : l.refused) {
        const auto k = Ledger::key(e);
        if (!ledger.accepted.count(k) && !ledger.unanswered.count(k)) ledger.decided_refused[k] = e;
      }
    }

    std::cout << "round " << rounds << ": killed after " << answers << " answers, " << acknowledged_this_round.size()
              << " events acknowledged as accepted, " << ledger.unanswered.size() << " unanswered" << std::endl;
    const auto audit = run_canopy({"check", dir.str("data")});
    ASSERT_EQ(audit.exit_code, 0) << audit.out;
    audited_from_a_base = audited_from_a_base || audit.out.find("audit base") != std::string::npos;
    server.start();
    Client op(server.port());

    // Balances: every acknowledged charge is there; unanswered ones may or may not be.
    for (const int payer : {root, s, other}) {
      const auto view = billing(op, ledger.ids[static_cast<std::size_t>(payer)]);
      const auto balance = json_int(view, {"available_balance_micros"});
      const auto most = ledger.credits[payer] - ledger.paid(payer);
      std::int64_t unanswered = 0;
      for (const auto& [k, e] : ledger.unanswered) unanswered += payer_of[e.org] == payer ? e.cost : 0;
      EXPECT_LE(balance, most) << "org " << payer << ": an acknowledged charge was lost";
      EXPECT_GE(balance, most - unanswered) << "org " << payer << ": charged more than was sent";
    }
    for (const int org : {a, root}) {
      const auto spend = json_int(billing(op, ledger.ids[static_cast<std::size_t>(org)]), {"cycle", "spend_micros"});
      EXPECT_GE(spend, ledger.spend_through(org, ledger.accepted)) << "org " << org;
      EXPECT_LE(spend, ledger.spend_through(org, ledger.accepted) + ledger.spend_through(org, ledger.unanswered)) << "org " << org;
    }
    const auto view_a = billing(op, ledger.ids[a]);
    EXPECT_LE(json_int(view_a, {"cycle", "spend_micros"}), limit_a_micros);
    if (a_refused_at_limit) {
      EXPECT_TRUE(view_a.at("cycle").at("paused").as_bool()) << "an acknowledged pause was lost";
    }

    // Every acknowledged event answers as before and charges nothing: this round's all, earlier ones sampled.
    std::vector<std::int64_t> balances_before;
    for (const int payer : {root, s, other}) {
      balances_before.push_back(json_int(billing(op, ledger.ids[static_cast<std::size_t>(payer)]), {"available_balance_micros"}));
    }
    std::size_t earlier = 0;
    for (const auto& [k, e] : ledger.accepted) {
      if (!acknowledged_this_round.count(k) && (earlier++ >= earlier_retries_per_round_max || rng() % 4 != 0)) continue;
      auto r = op.post("/v1/orgs/" + ledger.ids[static_cast<std::size_t>(e.org)] + "/usage", usage_body(e));
      EXPECT_EQ(r.status, 200u) << "retry of acknowledged " << k << ": " << r.body;
      EXPECT_EQ(json_str(r.json(), {"payer_org_id"}), ledger.ids[static_cast<std::size_t>(payer_of[e.org])]) << k;
    }
    std::size_t i = 0;
    for (const int payer : {root, s, other}) {
      EXPECT_EQ(json_int(billing(op, ledger.ids[static_cast<std::size_t>(payer)]), {"available_balance_micros"}),
                balances_before[i++])
          << "retrying acknowledged events charged org " << payer << " again";
    }

    // Settle the unanswered events by retrying them (the first decision, or a fresh one), then the
    // balances are exact again.
    for (const auto& [k, e] : ledger.unanswered) {
      auto r = op.post("/v1/orgs/" + ledger.ids[static_cast<std::size_t>(e.org)] + "/usage", usage_body(e));
      if (r.status == 200) {
        ledger.accepted[k] = e;
        ledger.decided_refused.erase(k);
      } else {
        EXPECT_TRUE(r.status == 402 || r.status == 409) << r.body;
        ledger.decided_refused[k] = e;
      }
    }
    ledger.unanswered.clear();
    for (const int payer : {root, s, other}) {
      EXPECT_EQ(json_int(billing(op, ledger.ids[static_cast<std::size_t>(payer)]), {"available_balance_micros"}),
                ledger.credits[payer] - ledger.paid(payer))
          << "org " << payer;
    }
    for (const int org : {a, root}) {
      EXPECT_EQ(json_int(billing(op, ledger.ids[static_cast<std::size_t>(org)]), {"cycle", "spend_micros"}),
                ledger.spend_through(org, ledger.accepted))
          << "org " << org;
    }
    if (::testing::Test::HasFailure()) break;
  }
  std::cout << rounds << " rounds, " << ledger.accepted.size() << " events charged, "
            << ledger.decided_refused.size() << " refused" << std::endl;
  EXPECT_GE(rounds, rounds_min);
  EXPECT_GT(ledger.accepted.size(), 50u);  // the run charged enough to mean something
  server.kill9();
  const auto audit = run_canopy({"check", dir.str("data")});
  EXPECT_EQ(audit.exit_code, 0) << audit.out;
  audited_from_a_base = audited_from_a_base || audit.out.find("audit base") != std::string::npos;
  EXPECT_TRUE(audited_from_a_base) << "the journal was never trimmed: " << audit.out;
}

}  // namespace
}  // namespace canopy::test
