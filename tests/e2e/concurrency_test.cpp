// Goal: no interleaving of concurrent events, retries, grants, transfers, limit changes, consolidated
// toggles and a cycle reset creates or destroys money or lets spend pass a limit (CONTRACT.md "Usage":
// "No interleaving ... may ever leave a balance below zero or a cycle spend above a limit").
//
// Several trees (depth 3 and 4) take random events from many threads, each on its own connection,
// while one more thread changes the billing configuration and moves the manual clock across a month
// boundary once. Every acknowledged answer is recorded; afterwards the server's billing views must be
// exactly what those answers imply, the offline audit must agree after a kill -9, and a restart must
// show the very same views.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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
constexpr int charging_threads = 8;
constexpr int charge_requests_max = 3000;                // bounds the run by count...
constexpr std::chrono::seconds charging_time_max{20};    // ...and by time, whichever comes first
constexpr int mutations_max = 400;

struct Org {
  std::string id;
  int parent = -1;                         // index, -1 for a root
  bool toggleable = false;                 // the mutator turns its consolidated billing on and off
  std::optional<std::int64_t> fixed_limit;  // a limit nobody changes: spend must never pass it
  bool mutable_limit = false;              // the mutator raises, lowers and removes its limit
  bool free_credits_recipient = false;     // the first root of its owner
};

Org root_org(std::string id, std::optional<std::int64_t> fixed_limit, bool free_credits_recipient) {
  Org org;
  org.id = std::move(id);
  org.fixed_limit = fixed_limit;
  org.free_credits_recipient = free_credits_recipient;
  return org;
}
Org sub_org(bool toggleable, std::optional<std::int64_t> fixed_limit, bool mutable_limit) {
  Org org;
  org.toggleable = toggleable;
  org.fixed_limit = fixed_limit;
  org.mutable_limit = mutable_limit;
  return org;
}

// One answer to one event (a single POST or one item of a batch).
struct Answer {
  int org = -1;
  std::string id;
  std::int64_t cost = 0;
  bool retry = false;
  bool known = true;       // false: no decision learned (503); resolved after the run
  bool accepted = false;
  std::string code;        // refusal code
  std::string payer;       // accepted: payer_org_id
  std::string at_org;      // refused: the org named in the refusal
  SteadyClock::time_point sent, answered;
};

struct PoolEntry {
  int org;
  std::string id;
  std::int64_t cost;
};

class World {
 public:
  explicit World(std::vector<Org> all) : orgs(std::move(all)), inflight(orgs.size()), added(orgs.size()) {
    for (std::size_t i = 0; i < this->orgs.size(); ++i) index[this->orgs[i].id] = static_cast<int>(i);
  }

  // The org and its ancestors, up to the root.
  std::vector<int> up(int org) const {
    std::vector<int> out;
    for (int o = org; o >= 0; o = orgs[static_cast<std::size_t>(o)].parent) out.push_back(o);
    return out;
  }
  int find(const std::string& id) const {
    auto it = index.find(id);
    return it == index.end() ? -1 : it->second;
  }

  // In-flight costs per org (conservatively, on the whole way up to the root): what the server may
  // have reserved at that org while the test lowers its limit.
  void begin(int org, std::int64_t cost) {
    for (int o : up(org)) {
      inflight[static_cast<std::size_t>(o)] += cost;
      added[static_cast<std::size_t>(o)] += cost;
    }
  }
  void end(int org, std::int64_t cost) {
    for (int o : up(org)) inflight[static_cast<std::size_t>(o)] -= cost;
  }

  void remember(const Answer& a) {
    std::lock_guard lock(mutex);
    const auto key = std::to_string(a.org) + "/" + a.id;
    if (a.known && a.accepted) accepted_payer.emplace(key, a.payer);
    if (!a.retry) pool.push_back({a.org, a.id, a.cost});
  }
  std::optional<PoolEntry> pick_retry(std::mt19937_64& rng) {
    std::lock_guard lock(mutex);
    if (pool.empty()) return std::nullopt;
    return pool[rng() % pool.size()];
  }
  // The payer of an event acknowledged as accepted before now, if any.
  std::optional<std::string> acknowledged_payer(int org, const std::string& id) {
    std::lock_guard lock(mutex);
    auto it = accepted_payer.find(std::to_string(org) + "/" + id);
    return it == accepted_payer.end() ? std::nullopt : std::optional<std::string>(it->second);
  }

  void fail(const std::string& what) {
    if (failures.fetch_add(1) < 20) ADD_FAILURE() << what;
  }

  const std::vector<Org> orgs;
  std::map<std::string, int> index;
  std::vector<std::atomic<std::int64_t>> inflight;
  std::vector<std::atomic<std::int64_t>> added;
  std::atomic<int> budget{charge_requests_max};
  std::atomic<int> answered{0};
  std::atomic<int> chargers_running{charging_threads};
  std::atomic<int> failures{0};
  SteadyClock::time_point deadline;

  std::mutex mutex;
  std::vector<PoolEntry> pool;
  std::map<std::string, std::string> accepted_payer;
};

json::value usage_body(const std::string& id, std::int64_t cost) {
  return {{"id", id}, {"type", "assistants.reply"}, {"quantity", 1}, {"cost_micros", cost}};
}

std::string detail_org(const json::value& v) {
  const auto* e = v.is_object() ? v.as_object().if_contains("error") : nullptr;
  const auto* d = e && e->is_object() ? e->as_object().if_contains("details") : nullptr;
  const auto* o = d && d->is_object() ? d->as_object().if_contains("org_id") : nullptr;
  return o && o->is_string() ? std::string(o->as_string()) : "";
}

// Checks one answer against what the contract allows, given what was acknowledged before it was sent.
void check_answer(World& w, const Answer& a, const std::optional<std::string>& payer_before) {
  const auto chain = w.up(a.org);
  auto on_chain = [&](const std::string& id) {
    const int o = w.find(id);
    return o >= 0 && std::find(chain.begin(), chain.end(), o) != chain.end();
  };
  const std::string what = "event " + a.id + " on " + w.orgs[static_cast<std::size_t>(a.org)].id + ": ";
  if (!a.known) return;
  if (payer_before && !(a.accepted && a.payer == *payer_before)) {
    w.fail(what + "a retry of an accepted event must answer accepted by " + *payer_before + ", got " +
           (a.accepted ? "payer " + a.payer : a.code));
  }
  if (a.accepted) {
    const int payer = w.find(a.payer);
    if (!on_chain(a.payer) || !(w.orgs[static_cast<std::size_t>(payer)].parent < 0 ||
                                w.orgs[static_cast<std::size_t>(payer)].toggleable)) {
      w.fail(what + "paid by " + a.payer + ", which cannot be its payer");
    }
  } else if (a.code == "spending_limit_reached" || a.code == "insufficient_credits") {
    if (!on_chain(a.at_org)) w.fail(what + a.code + " names " + a.at_org + ", not on its chain");
  } else if (!(a.code == "conflict" && a.retry)) {
    w.fail(what + "unexpected refusal " + a.code);
  }
}

void record(World& w, std::vector<Answer>& out, Answer a, const std::optional<std::string>& payer_before) {
  check_answer(w, a, payer_before);
  w.remember(a);
  out.push_back(std::move(a));
}

// One charging thread: single events and small batches, new ids and retries of earlier ones.
void charge_loop(World& w, std::uint16_t port, int thread, std::uint64_t seed, std::vector<Answer>& out) {
  std::mt19937_64 rng(seed);
  Client client(port);
  int n = 0;
  auto next_event = [&](Answer& a) {
    if (rng() % 100 < 15) {
      if (auto earlier = w.pick_retry(rng)) {
        a.org = earlier->org;
        a.id = earlier->id;
        a.cost = earlier->cost;
        a.retry = true;
        return;
      }
    }
    a.org = static_cast<int>(rng() % w.orgs.size());
    a.id = "t";
    a.id += std::to_string(thread);
    a.id += '-';
    a.id += std::to_string(n++);
    a.cost = rng() % 20 == 0 ? 0 : 10'000 + static_cast<std::int64_t>(rng() % 2'000'000);
  };
  try {
    while (w.budget.fetch_sub(1) > 0 && SteadyClock::now() < w.deadline) {
      const std::size_t batch = rng() % 5 == 0 ? 2 + rng() % 5 : 1;
      std::vector<Answer> events(batch);
      std::vector<std::optional<std::string>> payers_before(batch);
      for (std::size_t i = 0; i < batch; ++i) {
        next_event(events[i]);
        payers_before[i] = w.acknowledged_payer(events[i].org, events[i].id);
        w.begin(events[i].org, events[i].cost);
      }
      const auto sent = SteadyClock::now();
      HttpResult r;
      if (batch == 1) {
        r = client.post("/v1/orgs/" + w.orgs[static_cast<std::size_t>(events[0].org)].id + "/usage",
                        usage_body(events[0].id, events[0].cost));
      } else {
        json::array items;
        for (const auto& e : events) {
          json::value item = usage_body(e.id, e.cost);
          item.as_object()["org_id"] = w.orgs[static_cast<std::size_t>(e.org)].id;
          items.push_back(std::move(item));
        }
        r = client.post("/v1/usage:batch", {{"events", items}});
      }
      const auto answered = SteadyClock::now();
      for (auto& e : events) {
        e.sent = sent;
        e.answered = answered;
        w.end(e.org, e.cost);
      }
      const auto body = r.json();
      if (r.status == 503) {
        for (std::size_t i = 0; i < batch; ++i) {
          events[i].known = false;
          record(w, out, std::move(events[i]), payers_before[i]);
        }
      } else if (batch == 1) {
        auto& e = events[0];
        if (r.status == 200) {
          e.accepted = true;
          e.payer = json_str(body, {"payer_org_id"});
        } else if (r.status == 402 || r.status == 409) {
          e.code = r.error_code();
          e.at_org = detail_org(body);
        } else {
          w.fail("POST usage answered " + std::to_string(r.status) + ": " + r.body);
          continue;
        }
        record(w, out, std::move(e), payers_before[0]);
      } else {
        if (r.status != 200 || !body.is_object() || !body.as_object().contains("results") ||
            body.at("results").as_array().size() != batch) {
          w.fail("usage:batch answered " + std::to_string(r.status) + ": " + r.body);
          continue;
        }
        const auto& results = body.at("results").as_array();
        for (std::size_t i = 0; i < batch; ++i) {
          auto& e = events[i];
          if (json_str(results[i], {"id"}) != e.id) w.fail("usage:batch answered out of order: " + r.body);
          if (json_str(results[i], {"status"}) == "accepted") {
            e.accepted = true;
            e.payer = json_str(results[i], {"payer_org_id"});
          } else {
            e.code = json_str(results[i], {"code"});
            if (results[i].as_object().contains("org_id")) e.at_org = json_str(results[i], {"org_id"});
          }
          record(w, out, std::move(e), payers_before[i]);
        }
      }
      w.answered.fetch_add(1);
    }
  } catch (const std::exception& e) {
    w.fail(std::string("charging thread stopped: ") + e.what());
  }
  w.chargers_running.fetch_sub(1);
}

// What the configuration thread did, for the checks afterwards.
struct Mutations {
  std::vector<std::int64_t> credits;                     // grants and transfers in, less transfers out
  std::vector<std::optional<std::int64_t>> limit;        // the limit as last set
  std::vector<bool> lowered_below_spend_this_cycle;      // a limit set below spend + what was in flight
  std::vector<bool> self_paying;                         // consolidated billing off
  bool clock_moved = false;
  SteadyClock::time_point move_sent, move_acknowledged;
  int grants = 0, limit_changes = 0, toggles = 0, transfers = 0, transfer_retries = 0;
};

void mutate_loop(World& w, std::uint16_t port, std::uint64_t seed, Mutations& m) {
  std::mt19937_64 rng(seed);
  Client client(port);
  const auto started = SteadyClock::now();
  std::map<std::string, std::pair<json::value, std::string>> transfers_done;  // key -> (body, payment id)
  int keys = 0;
  auto move_clock = [&] {
    const auto end = json_str(client.get("/v1/orgs/" + w.orgs[0].id + "/billing").json(), {"cycle", "end"});
    m.move_sent = SteadyClock::now();
    auto r = client.post("/v1/admin/clock", {{"now", end}});
    m.move_acknowledged = SteadyClock::now();
    if (r.status != 200) w.fail("moving the clock answered " + r.body);
    m.clock_moved = true;
    std::fill(m.lowered_below_spend_this_cycle.begin(), m.lowered_below_spend_this_cycle.end(), false);
  };
  try {
    for (int op = 0; op < mutations_max && w.chargers_running.load() > 0; ++op) {
      if (!m.clock_moved && (w.answered.load() >= charge_requests_max / 2 || SteadyClock::now() - started > charging_time_max / 2)) {
        move_clock();
        continue;
      }
      const auto dice = rng() % 100;
      if (dice < 35) {
        const int org = static_cast<int>(rng() % w.orgs.size());
        const std::int64_t amount = 1'000'000 + static_cast<std::int64_t>(rng() % 40'000'000);
        auto r = client.post("/v1/orgs/" + w.orgs[static_cast<std::size_t>(org)].id + "/billing/grants",
                             {{"amount_micros", amount}, {"reason", "concurrency test"}});
        if (r.status != 201) {
          w.fail("grant answered " + r.body);
          continue;
        }
        m.credits[static_cast<std::size_t>(org)] += amount;
        ++m.grants;
      } else if (dice < 60) {
        std::vector<int> candidates;
        for (std::size_t i = 0; i < w.orgs.size(); ++i) {
          if (w.orgs[i].mutable_limit) candidates.push_back(static_cast<int>(i));
        }
        const int org = candidates[rng() % candidates.size()];
        const auto& id = w.orgs[static_cast<std::size_t>(org)].id;
        const auto spend_before = json_int(client.get("/v1/orgs/" + id + "/billing").json(), {"cycle", "spend_micros"});
        std::optional<std::int64_t> limit;
        const auto how = rng() % 4;
        if (how == 0) {
          limit = spend_before + 1 + static_cast<std::int64_t>(rng() % 20'000'000);  // above the spend
        } else if (how == 1) {
          limit = static_cast<std::int64_t>(static_cast<double>(spend_before) * (0.5 + static_cast<double>(rng() % 70) / 100.0));
        } else if (how == 2) {
          limit = 5'000'000 + static_cast<std::int64_t>(rng() % 55'000'000);
        }  // else: removed
        const auto inflight_before = w.inflight[static_cast<std::size_t>(org)].load();
        const auto added_before = w.added[static_cast<std::size_t>(org)].load();
        auto r = client.put("/v1/orgs/" + id + "/billing/spending-limit",
                            {{"monthly_limit_micros", limit ? json::value(*limit) : json::value(nullptr)}});
        const auto added_after = w.added[static_cast<std::size_t>(org)].load();
        if (r.status != 200) {
          w.fail("setting a limit answered " + r.body);
          continue;
        }
        const auto spend_after = json_int(r.json(), {"cycle", "spend_micros"});
        // Events in flight at that org may have been admitted against the old limit: lowering the limit
        // below spend + those is the test's doing, not the server's.
        if (limit && *limit < spend_after + inflight_before + (added_after - added_before)) {
          m.lowered_below_spend_this_cycle[static_cast<std::size_t>(org)] = true;
        }
        m.limit[static_cast<std::size_t>(org)] = limit;
        ++m.limit_changes;
      } else if (dice < 80) {
        std::vector<int> candidates;
        for (std::size_t i = 0; i < w.orgs.size(); ++i) {
          if (w.orgs[i].toggleable) candidates.push_back(static_cast<int>(i));
        }
        const int org = candidates[rng() % candidates.size()];
        const bool to_self_paying = !m.self_paying[static_cast<std::size_t>(org)];
        auto r = client.put("/v1/orgs/" + w.orgs[static_cast<std::size_t>(org)].id + "/billing/consolidated",
                            {{"enabled", !to_self_paying}});
        if (r.status != 200) {
          w.fail("toggling consolidated billing answered " + r.body);
          continue;
        }
        m.self_paying[static_cast<std::size_t>(org)] = to_self_paying;
        ++m.toggles;
      } else {
        if (!transfers_done.empty() && rng() % 4 == 0) {
          // The same key again: the first result, and nothing moves twice.
          auto it = std::next(transfers_done.begin(), static_cast<std::ptrdiff_t>(rng() % transfers_done.size()));
          const auto& [from, body] = std::pair{it->first.substr(0, it->first.find('|')), it->second.first};
          auto r = client.post("/v1/orgs/" + from + "/billing/transfers", body, {{"Idempotency-Key", it->first}});
          if (r.status != 201 || json_str(r.json(), {"id"}) != it->second.second) {
            w.fail("a repeated transfer key answered " + r.body);
          }
          ++m.transfer_retries;
          continue;
        }
        std::vector<int> candidates;
        for (std::size_t i = 0; i < w.orgs.size(); ++i) {
          if (w.orgs[i].toggleable && m.self_paying[i]) candidates.push_back(static_cast<int>(i));
        }
        if (candidates.empty()) continue;
        const int to = candidates[rng() % candidates.size()];
        const int from = w.up(to).back();
        const std::int64_t amount = 1'000'000 + static_cast<std::int64_t>(rng() % 5'000'000);
        const auto& from_id = w.orgs[static_cast<std::size_t>(from)].id;
        const std::string key = from_id + "|x" + std::to_string(keys++);
        json::value body{{"to_org_id", w.orgs[static_cast<std::size_t>(to)].id}, {"amount_micros", amount}};
        auto r = client.post("/v1/orgs/" + from_id + "/billing/transfers", body, {{"Idempotency-Key", key}});
        if (r.status == 201) {
          m.credits[static_cast<std::size_t>(from)] -= amount;
          m.credits[static_cast<std::size_t>(to)] += amount;
          transfers_done[key] = {body, json_str(r.json(), {"id"})};
          ++m.transfers;
        } else if (!(r.status == 409 && r.error_code() == "insufficient_credits")) {
          w.fail("a transfer answered " + r.body);
        }
      }
    }
    if (!m.clock_moved) move_clock();
  } catch (const std::exception& e) {
    w.fail(std::string("configuration thread stopped: ") + e.what());
  }
}

// Every org's billing view and payment history, as the operator sees them.
std::map<std::string, std::pair<json::value, json::value>> snapshot(Client& op, const World& w) {
  std::map<std::string, std::pair<json::value, json::value>> out;
  for (const auto& org : w.orgs) {
    auto billing = op.get("/v1/orgs/" + org.id + "/billing");
    auto payments = op.get("/v1/orgs/" + org.id + "/billing/payments?limit=500");
    EXPECT_EQ(billing.status, 200u) << billing.body;
    EXPECT_EQ(payments.status, 200u) << payments.body;
    out[org.id] = {billing.json(), payments.json()};
  }
  return out;
}

TEST(Concurrency, RandomConcurrentBillingKeepsEveryBalanceSpendAndLimitExact) {
  std::uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("CANOPY_TEST_SEED")) seed = std::stoull(s);
  std::cout << "seed " << seed << " (set CANOPY_TEST_SEED to repeat the choices)" << std::endl;
  SCOPED_TRACE("seed " + std::to_string(seed));

  TempDir dir;
  CanopyProcess server(dir.str("data"), {"--clock", "manual"});
  server.start();
  Client op(server.port());
  const auto u1 = create_user(op, "one@example.com", "One");
  const auto u2 = create_user(op, "two@example.com", "Two");
  Client admin1(server.port(), u1.token);
  Client admin2(server.port(), u2.token);

  // Three trees. Tree 3 is the second root of u1, so it gets no free credits.
  std::vector<Org> orgs;
  auto add = [&](Client& admin, int parent, Org org) {
    org.parent = parent;
    org.id = create_sub_org(admin, orgs[static_cast<std::size_t>(parent)].id, "Org " + std::to_string(orgs.size()));
    orgs.push_back(org);
    return static_cast<int>(orgs.size()) - 1;
  };
  orgs.push_back(root_org(create_root(op, u1.id, "business", "Tree 1"), std::nullopt, true));
  const int a1 = add(admin1, 0, sub_org(false, 120'000'000, false));
  const int b1 = add(admin1, a1, sub_org(true, std::nullopt, false));
  add(admin1, b1, sub_org(false, std::nullopt, true));
  const int a1b = add(admin1, 0, sub_org(true, std::nullopt, false));
  const int r2 = static_cast<int>(orgs.size());
  orgs.push_back(root_org(create_root(op, u2.id, "business", "Tree 2"), std::nullopt, true));
  const int a2 = add(admin2, r2, sub_org(false, std::nullopt, true));
  const int b2 = add(admin2, a2, sub_org(false, 80'000'000, false));
  const int c2 = add(admin2, b2, sub_org(true, std::nullopt, false));
  add(admin2, c2, sub_org(false, std::nullopt, true));  // depth 4
  const int r3 = static_cast<int>(orgs.size());
  orgs.push_back(root_org(create_root(op, u1.id, "business", "Tree 3"), 150'000'000, false));
  const int a3 = add(admin1, r3, sub_org(false, std::nullopt, true));
  add(admin1, a3, sub_org(false, std::nullopt, false));
  ASSERT_FALSE(::testing::Test::HasFailure()) << "setting up the trees failed";

  World w(orgs);
  Mutations m;
  m.credits.assign(orgs.size(), 0);
  m.limit.assign(orgs.size(), std::nullopt);
  m.lowered_below_spend_this_cycle.assign(orgs.size(), false);
  m.self_paying.assign(orgs.size(), false);
  for (std::size_t i = 0; i < orgs.size(); ++i) {
    m.self_paying[i] = orgs[i].parent < 0;
    if (orgs[i].fixed_limit) {
      ASSERT_EQ(op.put("/v1/orgs/" + orgs[i].id + "/billing/spending-limit", {{"monthly_limit_micros", *orgs[i].fixed_limit}}).status, 200u);
      m.limit[i] = orgs[i].fixed_limit;
    }
  }
  const std::map<int, std::int64_t> initial_grants{{0, 600'000'000}, {r2, 600'000'000}, {r3, 200'000'000},
                                                   {b1, 30'000'000}, {c2, 30'000'000}, {a1b, 20'000'000}};
  for (const auto& [org, amount] : initial_grants) {
    grant(op, orgs[static_cast<std::size_t>(org)].id, amount);
    m.credits[static_cast<std::size_t>(org)] += amount;
  }

  // The run.
  w.deadline = SteadyClock::now() + charging_time_max;
  std::vector<std::vector<Answer>> answers(charging_threads);
  std::vector<std::thread> threads;
  for (int t = 0; t < charging_threads; ++t) {
    threads.emplace_back(charge_loop, std::ref(w), server.port(), t, seed + static_cast<std::uint64_t>(t) + 1,
                         std::ref(answers[static_cast<std::size_t>(t)]));
  }
  std::thread mutator(mutate_loop, std::ref(w), server.port(), seed, std::ref(m));
  for (auto& t : threads) t.join();
  mutator.join();
  ASSERT_EQ(w.failures.load(), 0) << "the answers themselves broke the contract (see above)";

  // Decide the events whose answer was lost to a 503: a retry returns the first decision, or decides it now.
  std::vector<Answer> all;
  for (auto& list : answers) all.insert(all.end(), list.begin(), list.end());
  for (auto& a : all) {
    if (a.known) continue;
    auto r = op.post("/v1/orgs/" + orgs[static_cast<std::size_t>(a.org)].id + "/usage", usage_body(a.id, a.cost));
    a.known = true;
    a.answered = SteadyClock::now();
    a.accepted = r.status == 200;
    if (a.accepted) a.payer = json_str(r.json(), {"payer_org_id"});
  }

  // Each accepted event once: its payer, its cost, and the window in which it was decided.
  struct Charged {
    int org;
    std::int64_t cost;
    std::string payer;
    SteadyClock::time_point first_sent = SteadyClock::time_point::max();
    SteadyClock::time_point first_accepted = SteadyClock::time_point::max();
  };
  std::map<std::string, Charged> charged;
  std::map<std::string, SteadyClock::time_point> first_sent;
  int accepted_answers = 0, limit_refusals = 0, credit_refusals = 0, retries = 0;
  for (const auto& a : all) {
    const auto key = std::to_string(a.org) + "/" + a.id;
    auto [it, fresh] = first_sent.emplace(key, a.sent);
    if (!fresh) it->second = std::min(it->second, a.sent);
    retries += a.retry;
    limit_refusals += a.code == "spending_limit_reached";
    credit_refusals += a.code == "insufficient_credits";
    if (!a.accepted) continue;
    ++accepted_answers;
    auto& c = charged.try_emplace(key, Charged{a.org, a.cost, a.payer}).first->second;
    EXPECT_EQ(c.payer, a.payer) << "event " << key << " was answered with two payers";
    c.first_accepted = std::min(c.first_accepted, a.answered);
  }
  for (auto& [key, c] : charged) c.first_sent = first_sent[key];
  std::cout << all.size() << " answers: " << accepted_answers << " accepted (" << charged.size() << " distinct events), "
            << limit_refusals << " over a limit, " << credit_refusals << " not covered, " << retries << " retries; "
            << m.grants << " grants, " << m.limit_changes << " limit changes, " << m.toggles << " toggles, "
            << m.transfers << " transfers (" << m.transfer_retries << " repeated)" << std::endl;
  // The run must have exercised what it claims to check.
  ASSERT_TRUE(m.clock_moved);
  ASSERT_GT(charged.size(), 100u);
  ASSERT_GT(retries, 0);
  ASSERT_GT(limit_refusals, 0);
  ASSERT_GT(m.limit_changes + m.toggles, 0);

  // What the answers imply, per org. An event is decided between the first request for its id being
  // sent and the first answer accepting it. Decided wholly before the clock move was sent, its spend
  // belongs to the old cycle (gone); wholly after the move was acknowledged, to the new one; in between,
  // to either at each org of its chain (every org reads the clock when the event reaches it). So the
  // new cycle's spend is known within bounds, the balance exactly.
  const std::size_t n = orgs.size();
  std::vector<std::int64_t> paid(n, 0), spend_low(n, 0), spend_high(n, 0);
  int old_cycle_events = 0, new_cycle_events = 0;
  for (const auto& [key, c] : charged) {
    const int payer = w.find(c.payer);
    paid[static_cast<std::size_t>(payer)] += c.cost;
    const bool old_cycle = c.first_accepted < m.move_sent;
    const bool new_cycle = c.first_sent > m.move_acknowledged;
    old_cycle_events += old_cycle;
    new_cycle_events += new_cycle;
    if (old_cycle) continue;
    for (int o : w.up(c.org)) {
      spend_high[static_cast<std::size_t>(o)] += c.cost;
      if (new_cycle) spend_low[static_cast<std::size_t>(o)] += c.cost;
      if (o == payer) break;
    }
  }

  std::cout << old_cycle_events << " events decided before the clock moved, " << new_cycle_events << " after, "
            << charged.size() - static_cast<std::size_t>(old_cycle_events + new_cycle_events) << " while it moved" << std::endl;
  ASSERT_GT(new_cycle_events, 0);
  ASSERT_GT(old_cycle_events, 0);

  Client op_after(server.port());
  const auto before = snapshot(op_after, w);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& org = orgs[i];
    const auto& view = before.at(org.id).first;
    SCOPED_TRACE("org " + std::to_string(i) + " " + org.id + ": " + json::serialize(view));
    const std::int64_t free = org.free_credits_recipient ? 2 * free_credits : 0;  // creation + one new cycle
    const auto balance = json_int(view, {"available_balance_micros"});
    EXPECT_GE(balance, 0);
    EXPECT_EQ(balance, free + m.credits[i] - paid[i]) << "credits " << free + m.credits[i] << ", paid " << paid[i];
    const auto spend = json_int(view, {"cycle", "spend_micros"});
    EXPECT_GE(spend, spend_low[i]);
    EXPECT_LE(spend, spend_high[i]);
    if (org.fixed_limit) {
      EXPECT_LE(spend, *org.fixed_limit);
    }
    if (m.limit[i] && !m.lowered_below_spend_this_cycle[i]) {
      EXPECT_LE(spend, *m.limit[i]);
    }
    // The payer is the first org up the tree that pays for itself, as the toggles left them.
    int payer = static_cast<int>(i);
    while (!m.self_paying[static_cast<std::size_t>(payer)]) payer = orgs[static_cast<std::size_t>(payer)].parent;
    EXPECT_EQ(json_str(view, {"payer_org_id"}), orgs[static_cast<std::size_t>(payer)].id);
  }

  // Nothing acknowledged is lost, the audit agrees, and a restart shows the very same state.
  server.kill9();
  const auto audit = run_canopy({"check", dir.str("data")});
  EXPECT_EQ(audit.exit_code, 0) << audit.out;
  server.start();
  Client op_restarted(server.port());
  const auto after = snapshot(op_restarted, w);
  for (const auto& org : orgs) {
    EXPECT_EQ(after.at(org.id).first, before.at(org.id).first) << "billing view of " << org.id;
    EXPECT_EQ(after.at(org.id).second, before.at(org.id).second) << "payment history of " << org.id;
  }
}

}  // namespace
}  // namespace canopy::test
