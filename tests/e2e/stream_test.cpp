// Goal: the WebSocket stream of CONTRACT.md "WebSocket" as a dashboard sees it, through real sockets:
// authentication on the upgrade, subscribe with a snapshot, pushes when balances move (coalesced,
// seq increasing), refusals for orgs the caller may not see, usage over the socket, slow consumers
// closed with 1008 while charging goes on, and a clean close on shutdown.
//
// What a subscriber may rely on, as these tests state it:
//   - {"op":"subscribe","org_id"} answers {"type":"subscribed","org_id","snapshot":{balance event}}; an org
//     the caller cannot see (another tenant's, or none at all) answers {"type":"error","code":"not_found",
//     "org_id"} and is never pushed; {"op":"unsubscribe"} answers {"type":"unsubscribed"} and stops its pushes.
//   - every committed change of a subscribed org is pushed as {"type":"balance",…}, coalesced: at most one
//     push per org per connection per 50 ms, always a consistent, newer state, the last one the final
//     state; `seq` increases strictly on each connection (snapshots, pushes and alerts share it).
//   - alerts of a subscribed org are pushed as {"type":"alert","seq","alert":{id,type,org_id,created_at,data}}.
//   - {"op":"usage","event"} answers {"type":"usage_result","id","status":"accepted"|"refused","code"?},
//     decided as a batch item (without usage:write on the org: refused, not_found); a message that is not
//     a valid one answers {"type":"error","code":"invalid_request","message"} and the connection goes on.
//   - access is checked again on each push: a member removed since subscribing gets not_found, then
//     nothing; a direct member of a show-credits org gets no *_micros field, in pushes or alerts.
//   - a consumer that lets its bounded queue fill is closed with 1008 and slows no one; a reader that
//     keeps up is never closed; SIGTERM closes every connection with 1001.
//   - a new cycle (which resumes a paused org) is pushed when it starts.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "tests/e2e/harness.hpp"
#include "tests/e2e/ws_client.hpp"

namespace canopy::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::int64_t free_credits = 5'000'000;
constexpr std::int64_t root_grant = 10'000'000;
constexpr std::int64_t root_start = free_credits + root_grant;

// "<prefix><n>" (spelled out: GCC 12 warns falsely on `"literal" + std::to_string(n)`).
std::string numbered(std::string prefix, std::int64_t n) {
  prefix += std::to_string(n);
  return prefix;
}

json::value event(const std::string& id, std::int64_t cost) {
  return {{"id", id}, {"type", "assistants.reply"}, {"quantity", 1}, {"cost_micros", cost}};
}

json::value usage_op(const std::string& id, const std::string& org, std::int64_t cost) {
  return {{"op", "usage"},
          {"event", {{"id", id}, {"org_id", org}, {"type", "assistants.reply"}, {"quantity", 1}, {"cost_micros", cost}}}};
}

json::value subscribe_op(const std::string& org) { return {{"op", "subscribe"}, {"org_id", org}}; }
json::value unsubscribe_op(const std::string& org) { return {{"op", "unsubscribe"}, {"org_id", org}}; }

std::string type_of(const json::value& m) {
  const auto* t = m.is_object() ? m.as_object().if_contains("type") : nullptr;
  return t && t->is_string() ? std::string(t->as_string()) : "";
}

bool has(const json::value& v, const char* key) { return v.is_object() && v.as_object().contains(key); }

std::string str_or(const json::value& v, const char* key) {
  const auto* p = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  return p && p->is_string() ? std::string(p->as_string()) : "";
}

// Every key ending in "_micros" anywhere in `v`.
void find_micros(const json::value& v, std::vector<std::string>& out) {
  if (v.is_object()) {
    for (const auto& [k, child] : v.as_object()) {
      const std::string key(k);
      if (key.size() >= 7 && key.compare(key.size() - 7, 7, "_micros") == 0) out.push_back(key);
      find_micros(child, out);
    }
  } else if (v.is_array()) {
    for (const auto& child : v.as_array()) find_micros(child, out);
  }
}
std::vector<std::string> micros_in(const json::value& v) {
  std::vector<std::string> out;
  find_micros(v, out);
  return out;
}

// Reads messages until one satisfies `done` (included) or `wait` passes; returns all read.
std::vector<json::value> read_until(WsClient& ws, const std::function<bool(const json::value&)>& done,
                                    std::chrono::milliseconds wait = 5s) {
  std::vector<json::value> out;
  const auto until = Clock::now() + wait;
  while (Clock::now() < until) {
    auto m = ws.read_json(std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()));
    if (!m) break;
    out.push_back(std::move(*m));
    if (done(out.back())) break;
  }
  return out;
}

// Everything that arrives within `wait` (for asserting that nothing more comes).
std::vector<json::value> read_for(WsClient& ws, std::chrono::milliseconds wait) {
  return read_until(ws, [](const json::value&) { return false; }, wait);
}

// The push's percent, or -1 when it has none (null or missing).
double percent_of(const json::value& m) {
  const auto* p = m.is_object() ? m.as_object().if_contains("percent") : nullptr;
  return p && p->is_number() ? p->to_number<double>() : -1;
}

bool is_balance_of(const json::value& m, const std::string& org) { return type_of(m) == "balance" && str_or(m, "org_id") == org; }

std::string dump(const std::vector<json::value>& messages) {
  std::string s;
  for (const auto& m : messages) s += json::serialize(m) + "\n";
  return s;
}

// The value of an unlabelled counter in GET /metrics, or -1.
long long metric(Client& c, const std::string& name) {
  const auto body = c.get("/metrics").body;
  const auto at = body.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stoll(body.substr(at + name.size() + 2));
}

class Stream : public ::testing::Test {
 protected:
  void SetUp() override { boot({}); }

  void boot(std::vector<std::string> extra) {
    std::vector<std::string> args{"--outbox", dir_.str("outbox")};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<CanopyProcess>(dir_.str("data"), args);
    server_->start();
    op_ = std::make_unique<Client>(server_->port());
    owner_ = create_user(*op_, "owner@example.com", "Owner");
    root_ = create_root(*op_, owner_.id);
    grant(*op_, root_, root_grant);
    admin_ = std::make_unique<Client>(server_->port(), owner_.token);
  }

  std::uint16_t port() const { return server_->port(); }
  Client& admin() { return *admin_; }

  HttpResult charge(const std::string& org, const std::string& id, std::int64_t cost) {
    return admin().post("/v1/orgs/" + org + "/usage", event(id, cost));
  }
  std::int64_t balance(const std::string& org) {
    return json_int(op_->get("/v1/orgs/" + org + "/billing").json(), {"available_balance_micros"});
  }
  void set_limit(const std::string& org, std::int64_t limit) {
    auto r = admin().put("/v1/orgs/" + org + "/billing/spending-limit", {{"monthly_limit_micros", limit}});
    ASSERT_EQ(r.status, 200u) << r.body;
  }

  // Opens a stream as `token` and subscribes to `org`; returns the "subscribed" answer.
  json::value open_subscribed(WsClient& ws, const std::string& token, const std::string& org) {
    EXPECT_TRUE(ws.connect(port(), token));
    ws.send(subscribe_op(org));
    auto m = ws.read_json();
    EXPECT_TRUE(m) << "no answer to subscribe";
    if (!m) return nullptr;
    EXPECT_EQ(type_of(*m), "subscribed") << json::serialize(*m);
    return *m;
  }

  // Invites `email` into `org` as `role` and accepts anonymously: a new user, a direct member only.
  CreatedUser join(const std::string& org, const std::string& email, const std::string& role) {
    return join_by_invitation(admin(), port(), org, email, role);
  }

  TempDir dir_;
  std::unique_ptr<CanopyProcess> server_;
  std::unique_ptr<Client> op_;
  std::unique_ptr<Client> admin_;
  CreatedUser owner_;
  std::string root_;
};

// --- subscribe and push --------------------------------------------------------------------------

TEST_F(Stream, ASubscriberGetsASnapshotThenThePushOfACharge) {
  WsClient ws;
  ASSERT_TRUE(ws.connect(server_->port(), owner_.token));
  ws.send(json::value{{"op", "subscribe"}, {"org_id", root_}});
  const auto subscribed = ws.read_type("subscribed");
  ASSERT_TRUE(subscribed);
  EXPECT_EQ(json_int(*subscribed, {"snapshot", "available_balance_micros"}), 15'000'000);  // grant + free credits
  ASSERT_EQ(op_->post("/v1/orgs/" + root_ + "/usage", event("e1", 1'000)).status, 200u);
  const auto push = ws.read_type("balance");
  ASSERT_TRUE(push);
  EXPECT_EQ(json_str(*push, {"org_id"}), root_);
  EXPECT_EQ(json_int(*push, {"available_balance_micros"}), 14'999'000);
  EXPECT_EQ(json_int(*push, {"cycle_spend_micros"}), 1'000);
  EXPECT_GT(json_int(*push, {"seq"}), json_int(*subscribed, {"snapshot", "seq"}));
}

TEST_F(Stream, TheUpgradeNeedsAValidToken) {
  WsClient none;
  unsigned status = 0;
  EXPECT_FALSE(none.connect(server_->port(), "", &status));
  EXPECT_EQ(status, 401u);
  WsClient forged;
  EXPECT_FALSE(forged.connect(server_->port(), "cu_forged", &status));
  EXPECT_EQ(status, 401u);
}

// A malformed handshake is refused, as every error is, in JSON naming what is wrong (RFC 6455
// §4.2.1: version 13, a key that is the base64 of 16 bytes).
TEST_F(Stream, AMalformedUpgradeIs400InJsonNamingTheHeader) {
  struct Case {
    std::string what;
    std::map<std::string, std::string> headers;
    std::string field;
  };
  const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455's sample
  const std::vector<Case> cases = {
      {"no version", {{"Sec-WebSocket-Key", key}}, "Sec-WebSocket-Version"},
      {"version 8", {{"Sec-WebSocket-Version", "8"}, {"Sec-WebSocket-Key", key}}, "Sec-WebSocket-Version"},
      {"no key", {{"Sec-WebSocket-Version", "13"}}, "Sec-WebSocket-Key"},
      {"key of 3 bytes", {{"Sec-WebSocket-Version", "13"}, {"Sec-WebSocket-Key", "!!!"}}, "Sec-WebSocket-Key"},
      {"key of 4 bytes", {{"Sec-WebSocket-Version", "13"}, {"Sec-WebSocket-Key", "AAAA"}}, "Sec-WebSocket-Key"},
      {"key of 17 bytes", {{"Sec-WebSocket-Version", "13"}, {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZWE="}},
       "Sec-WebSocket-Key"},
      {"key whose padding bits are set", {{"Sec-WebSocket-Version", "13"}, {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZR=="}},
       "Sec-WebSocket-Key"},
  };
  for (const auto& c : cases) {
    auto headers = c.headers;
    headers.emplace("Upgrade", "websocket");
    headers.emplace("Connection", "Upgrade");
    Client client(server_->port(), owner_.token);
    const auto r = client.request("GET", "/v1/stream", {}, headers);
    EXPECT_EQ(r.status, 400u) << c.what << " -> " << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request") << c.what << " -> " << r.body;
    EXPECT_EQ(json_str(r.json(), {"error", "details", "field"}), c.field) << c.what << " -> " << r.body;
  }
  WsClient good;  // and a well-formed one still opens
  EXPECT_TRUE(good.connect(server_->port(), owner_.token));
}

TEST_F(Stream, TheSnapshotIsAFullBalanceEventOfTheOrg) {
  set_limit(root_, 20'000'000);
  ASSERT_EQ(charge(root_, "e1", 5'000'000).status, 200u);
  WsClient ws;
  const auto subscribed = open_subscribed(ws, owner_.token, root_);
  ASSERT_TRUE(subscribed.is_object());
  EXPECT_EQ(json_str(subscribed, {"org_id"}), root_);
  const auto& snap = subscribed.at("snapshot");
  EXPECT_EQ(json_str(snap, {"type"}), "balance");
  EXPECT_EQ(json_str(snap, {"org_id"}), root_);
  EXPECT_GE(json_int(snap, {"seq"}), 1);
  EXPECT_EQ(json_int(snap, {"available_balance_micros"}), root_start - 5'000'000);
  EXPECT_EQ(json_int(snap, {"cycle_spend_micros"}), 5'000'000);
  EXPECT_EQ(json_int(snap, {"monthly_spending_limit_micros"}), 20'000'000);
  ASSERT_TRUE(has(snap, "paused") && snap.at("paused").is_bool()) << json::serialize(snap);
  EXPECT_FALSE(snap.at("paused").as_bool());
  EXPECT_DOUBLE_EQ(percent_of(snap), 25.0) << json::serialize(snap);
}

TEST_F(Stream, EachChargePushesTheNewBalanceAndSeqKeepsIncreasing) {
  WsClient ws;
  const auto subscribed = open_subscribed(ws, owner_.token, root_);
  std::int64_t last_seq = json_int(subscribed, {"snapshot", "seq"});
  std::int64_t expected = root_start;
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(charge(root_, numbered("e", i), 100'000 * i).status, 200u);
    expected -= 100'000 * i;
    // Wait for the push that shows this charge (an earlier coalesced state may not come at all).
    const auto got = read_until(ws, [&](const json::value& m) {
      return is_balance_of(m, root_) && json_int(m, {"available_balance_micros"}) == expected;
    });
    ASSERT_FALSE(got.empty());
    ASSERT_EQ(json_int(got.back(), {"available_balance_micros"}), expected) << dump(got);
    for (const auto& m : got) {
      EXPECT_GT(json_int(m, {"seq"}), last_seq) << dump(got);
      last_seq = json_int(m, {"seq"});
    }
  }
}

TEST_F(Stream, ABurstOfChargesIsCoalescedIntoFewerPushesEndingAtTheFinalState) {
  WsClient ws;
  const auto subscribed = open_subscribed(ws, owner_.token, root_);
  constexpr int charges = 200;
  constexpr std::int64_t cost = 1'000;
  const auto started = Clock::now();
  for (int i = 0; i < charges; ++i) ASSERT_EQ(charge(root_, numbered("burst-", i), cost).status, 200u);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  const std::int64_t final_balance = root_start - charges * cost;

  auto pushes = read_until(ws, [&](const json::value& m) {
    return is_balance_of(m, root_) && json_int(m, {"available_balance_micros"}) == final_balance;
  });
  // A straggler holding the same final state may still be on its way; collect it too.
  for (auto& m : read_for(ws, 200ms)) pushes.push_back(std::move(m));
  ASSERT_FALSE(pushes.empty());

  std::int64_t last_seq = json_int(subscribed, {"snapshot", "seq"});
  std::int64_t last_balance = root_start;
  for (const auto& m : pushes) {
    ASSERT_TRUE(is_balance_of(m, root_)) << dump(pushes);
    const auto balance = json_int(m, {"available_balance_micros"});
    const auto spend = json_int(m, {"cycle_spend_micros"});
    EXPECT_GT(json_int(m, {"seq"}), last_seq) << "seq must increase strictly:\n" << dump(pushes);
    EXPECT_LE(balance, last_balance) << "a push must never show an older state:\n" << dump(pushes);
    EXPECT_EQ(balance + spend, root_start) << "each push is one consistent state:\n" << dump(pushes);
    last_seq = json_int(m, {"seq"});
    last_balance = balance;
  }
  EXPECT_EQ(json_int(pushes.back(), {"available_balance_micros"}), final_balance);
  EXPECT_EQ(json_int(pushes.back(), {"cycle_spend_micros"}), charges * cost);
  // At most one push per 50 ms window: the burst lasted `took`, plus a window on either side. (No
  // bound in charges: on a loaded machine a charge may take longer than a window, and then a push per
  // charge is what the contract asks. Without coalescing, 200 charges in ~1 s would be ~200 pushes.)
  EXPECT_LE(static_cast<long long>(pushes.size()), took.count() / 50 + 3)
      << pushes.size() << " pushes for a burst of " << took.count() << " ms";
}

TEST_F(Stream, AlertsOfASubscribedOrgArePushedOnceEachInTheSameSeq) {
  set_limit(root_, 1'000'000);
  ASSERT_EQ(admin().put("/v1/orgs/" + root_ + "/alerts", {{"spend_percent_thresholds", {50, 100}}}).status, 200u);
  WsClient ws;
  const auto subscribed = open_subscribed(ws, owner_.token, root_);
  const auto is_alert = [](const json::value& m, const std::string& type) {
    return type_of(m) == "alert" && has(m, "alert") && str_or(m.at("alert"), "type") == type;
  };

  ASSERT_EQ(charge(root_, "e1", 500'000).status, 200u);
  auto got = read_until(ws, [&](const json::value& m) { return is_alert(m, "spend.threshold_crossed"); });
  ASSERT_TRUE(!got.empty() && type_of(got.back()) == "alert") << dump(got);
  const auto& alert = got.back().at("alert");
  EXPECT_TRUE(std::regex_match(json_str(alert, {"id"}), std::regex("^evt_[0-9a-z]+$"))) << json::serialize(alert);
  EXPECT_EQ(json_str(alert, {"org_id"}), root_);
  EXPECT_TRUE(std::regex_match(json_str(alert, {"created_at"}), std::regex(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$)")));
  EXPECT_EQ(json_int(alert, {"data", "threshold_percent"}), 50);
  EXPECT_EQ(json_int(alert, {"data", "cycle_spend_micros"}), 500'000);
  EXPECT_EQ(json_int(alert, {"data", "monthly_spending_limit_micros"}), 1'000'000);

  // Spend stays between the lines: no alert, just balance pushes.
  ASSERT_EQ(charge(root_, "e2", 100'000).status, 200u);
  ASSERT_EQ(charge(root_, "e3", 400'000).status, 200u);  // reaches 100 % exactly: crossed and paused
  for (auto& m : read_until(ws, [&](const json::value& m) { return is_alert(m, "org.paused"); })) got.push_back(std::move(m));
  for (auto& m : read_for(ws, 200ms)) got.push_back(std::move(m));

  std::vector<std::string> alerts;
  std::int64_t last_seq = json_int(subscribed, {"snapshot", "seq"});
  for (const auto& m : got) {
    EXPECT_GT(json_int(m, {"seq"}), last_seq) << "alerts and pushes share one increasing seq:\n" << dump(got);
    last_seq = json_int(m, {"seq"});
    if (type_of(m) != "alert") continue;
    const auto& a = m.at("alert");
    alerts.push_back(json_str(a, {"type"}) +
                     (json_str(a, {"type"}) == "spend.threshold_crossed"
                          ? numbered(":", json_int(a, {"data", "threshold_percent"}))
                          : ""));
  }
  EXPECT_EQ(alerts, (std::vector<std::string>{"spend.threshold_crossed:50", "spend.threshold_crossed:100", "org.paused"}))
      << dump(got);
}

// --- who may subscribe -------------------------------------------------------------------------------

TEST_F(Stream, AnotherTenantsOrgAndAnUnknownOrgAreBothNotFoundAndNeverPushed) {
  const auto other = create_user(*op_, "other@example.com", "Other");
  const auto foreign = create_root(*op_, other.id, "business", "Other Agency");
  WsClient ws;
  ASSERT_TRUE(ws.connect(port(), owner_.token));

  ws.send(subscribe_op(foreign));
  const auto refused = ws.read_json();
  ASSERT_TRUE(refused);
  EXPECT_EQ(type_of(*refused), "error") << json::serialize(*refused);
  EXPECT_EQ(str_or(*refused, "code"), "not_found");
  EXPECT_EQ(str_or(*refused, "org_id"), foreign);

  ws.send(subscribe_op("org_0000000000000"));
  const auto unknown = ws.read_json();
  ASSERT_TRUE(unknown);
  EXPECT_EQ(type_of(*unknown), "error") << json::serialize(*unknown);
  EXPECT_EQ(str_or(*unknown, "code"), "not_found");
  EXPECT_EQ(str_or(*unknown, "org_id"), "org_0000000000000");
  EXPECT_EQ(str_or(*unknown, "message"), str_or(*refused, "message")) << "existence must not leak";

  // The foreign org moves; then ours does. Our push arrives, nothing ever about theirs.
  Client other_admin(port(), other.token);
  ASSERT_EQ(other_admin.post("/v1/orgs/" + foreign + "/usage", event("f1", 1'000)).status, 200u);
  ws.send(subscribe_op(root_));
  ASSERT_EQ(charge(root_, "e1", 2'000).status, 200u);
  auto got = read_until(ws, [&](const json::value& m) { return is_balance_of(m, root_); });
  for (auto& m : read_for(ws, 200ms)) got.push_back(std::move(m));
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(type_of(got.front()), "subscribed") << dump(got);
  for (const auto& m : got) {
    EXPECT_NE(str_or(m, "org_id"), foreign) << dump(got);
    EXPECT_EQ(json::serialize(m).find(foreign), std::string::npos) << dump(got);
  }
}

TEST_F(Stream, UnsubscribingStopsThePushesOfThatOrgOnly) {
  const auto a = create_sub_org(admin(), root_, "A");
  WsClient ws;
  open_subscribed(ws, owner_.token, root_);
  ws.send(subscribe_op(a));
  const auto subscribed_a = ws.read_json();
  ASSERT_TRUE(subscribed_a && type_of(*subscribed_a) == "subscribed");

  ws.send(unsubscribe_op(root_));
  const auto unsubscribed = ws.read_json();
  ASSERT_TRUE(unsubscribed);
  EXPECT_EQ(type_of(*unsubscribed), "unsubscribed") << json::serialize(*unsubscribed);
  EXPECT_EQ(str_or(*unsubscribed, "org_id"), root_);

  // Root moves alone, then A (which also moves root, its payer): only A is pushed.
  ASSERT_EQ(charge(root_, "e1", 1'000).status, 200u);
  ASSERT_EQ(charge(a, "e2", 2'000).status, 200u);
  auto got = read_until(ws, [&](const json::value& m) { return is_balance_of(m, a) && json_int(m, {"cycle_spend_micros"}) == 2'000; });
  for (auto& m : read_for(ws, 200ms)) got.push_back(std::move(m));
  ASSERT_FALSE(got.empty());
  for (const auto& m : got) EXPECT_TRUE(is_balance_of(m, a)) << "only A may be pushed:\n" << dump(got);

  // Unsubscribing again, or from an org never subscribed, is answered the same way.
  ws.send(unsubscribe_op(root_));
  const auto again = ws.read_json();
  ASSERT_TRUE(again);
  EXPECT_EQ(type_of(*again), "unsubscribed");

  // Subscribing again gives the current state.
  ws.send(subscribe_op(root_));
  const auto back = ws.read_json();
  ASSERT_TRUE(back);
  ASSERT_EQ(type_of(*back), "subscribed") << json::serialize(*back);
  EXPECT_EQ(json_int(*back, {"snapshot", "available_balance_micros"}), root_start - 3'000);
}

// --- usage over the socket --------------------------------------------------------------------------

TEST_F(Stream, UsageOverTheSocketIsAcceptedOnceAndRefusedWithTheReason) {
  const auto a = create_sub_org(admin(), root_, "A");
  set_limit(a, 5'000);
  WsClient ws;
  ASSERT_TRUE(ws.connect(port(), owner_.token));

  ws.send(usage_op("u1", a, 1'000));
  auto r = ws.read_json();
  ASSERT_TRUE(r);
  EXPECT_EQ(type_of(*r), "usage_result") << json::serialize(*r);
  EXPECT_EQ(str_or(*r, "id"), "u1");
  EXPECT_EQ(str_or(*r, "status"), "accepted");
  EXPECT_EQ(str_or(*r, "payer_org_id"), root_);
  EXPECT_FALSE(has(*r, "code"));
  EXPECT_EQ(balance(root_), root_start - 1'000);

  // The same id again: the first answer, nothing charged.
  ws.send(usage_op("u1", a, 1'000));
  r = ws.read_json();
  ASSERT_TRUE(r);
  EXPECT_EQ(str_or(*r, "status"), "accepted") << json::serialize(*r);
  EXPECT_EQ(balance(root_), root_start - 1'000);

  ws.send(usage_op("u2", a, 4'001));  // 1,000 + 4,001 > A's 5,000 limit
  r = ws.read_json();
  ASSERT_TRUE(r);
  EXPECT_EQ(str_or(*r, "id"), "u2");
  EXPECT_EQ(str_or(*r, "status"), "refused") << json::serialize(*r);
  EXPECT_EQ(str_or(*r, "code"), "spending_limit_reached");

  ws.send(usage_op("u3", root_, root_start));  // more than the balance left
  r = ws.read_json();
  ASSERT_TRUE(r);
  EXPECT_EQ(str_or(*r, "status"), "refused") << json::serialize(*r);
  EXPECT_EQ(str_or(*r, "code"), "insufficient_credits");

  const auto other = create_user(*op_, "other@example.com", "Other");
  const auto foreign = create_root(*op_, other.id, "business", "Other Agency");
  ws.send(usage_op("u4", foreign, 1'000));
  r = ws.read_json();
  ASSERT_TRUE(r);
  EXPECT_EQ(str_or(*r, "status"), "refused") << json::serialize(*r);
  EXPECT_EQ(str_or(*r, "code"), "not_found");

  EXPECT_EQ(balance(root_), root_start - 1'000) << "refused events charge nothing";
  EXPECT_EQ(balance(foreign), free_credits);
}

TEST_F(Stream, UsageOverTheSocketNeedsUsageWriteAndIsRefusedAsNotFoundWithout) {
  // docs/openapi.yaml: without usage:write on the event's org the result is refused with not_found.
  const auto agent = join(root_, "agent@example.com", "agent");
  WsClient ws;
  ASSERT_TRUE(ws.connect(port(), agent.token));
  ws.send(usage_op("u1", root_, 1'000));
  const auto r = ws.read_json();
  ASSERT_TRUE(r);
  EXPECT_EQ(str_or(*r, "status"), "refused") << json::serialize(*r);
  EXPECT_EQ(str_or(*r, "code"), "not_found") << json::serialize(*r);
  EXPECT_EQ(balance(root_), root_start);
}

TEST_F(Stream, AnApiKeyMaySendUsageOverTheSocketButNotSubscribe) {
  const auto a = create_sub_org(admin(), root_, "A");
  auto created = admin().post("/v1/orgs/" + root_ + "/api-keys", {{"name", "ingest"}});
  ASSERT_EQ(created.status, 201u) << created.body;
  WsClient ws;
  ASSERT_TRUE(ws.connect(port(), json_str(created.json(), {"key"})));
  ws.send(usage_op("k1", a, 1'000));  // a descendant of the key's org
  auto r = ws.read_json();
  ASSERT_TRUE(r);
  EXPECT_EQ(str_or(*r, "status"), "accepted") << json::serialize(*r);
  EXPECT_EQ(str_or(*r, "payer_org_id"), root_);
  ws.send(subscribe_op(root_));
  r = ws.read_json();
  ASSERT_TRUE(r);
  EXPECT_EQ(type_of(*r), "error") << json::serialize(*r);
  EXPECT_EQ(str_or(*r, "code"), "not_found");
  EXPECT_EQ(balance(root_), root_start - 1'000);
}

TEST_F(Stream, AMessageThatIsNotAValidOneIsAnsweredWithInvalidRequestAndTheConnectionGoesOn) {
  WsClient ws;
  ASSERT_TRUE(ws.connect(port(), owner_.token));
  const std::vector<std::string> bad = {
      "not json",
      "[]",
      "42",
      R"({})",
      R"({"op":"dance","org_id":"x"})",
      R"({"op":"subscribe"})",
      R"({"op":"subscribe","org_id":7})",
      R"({"op":"subscribe","org_id":")" + root_ + R"(","extra":true})",
      R"({"op":"usage"})",
      R"({"op":"usage","event":{"id":"x","type":"assistants.reply","quantity":1,"cost_micros":1}})",
      R"({"op":"usage","event":{"id":"x","org_id":")" + root_ + R"(","type":"assistants.reply","quantity":1,"cost_micros":-5}})",
      R"({"op":"usage","event":{"id":"x","org_id":")" + root_ + R"(","type":"assistants.reply","quantity":1,"cost_micros":1.5}})",
      R"({"op":"subscribe","org_id":")" + root_ + R"("} trailing)",
  };
  for (const auto& text : bad) {
    ws.send(text);
    const auto r = ws.read_json();
    ASSERT_TRUE(r) << "no answer to " << text;
    EXPECT_EQ(type_of(*r), "error") << text << " -> " << json::serialize(*r);
    EXPECT_EQ(str_or(*r, "code"), "invalid_request") << text << " -> " << json::serialize(*r);
    EXPECT_FALSE(str_or(*r, "message").empty()) << text << " -> " << json::serialize(*r);
  }
  EXPECT_EQ(balance(root_), root_start);
  ws.send(subscribe_op(root_));
  const auto ok = ws.read_json();
  ASSERT_TRUE(ok);
  EXPECT_EQ(type_of(*ok), "subscribed") << json::serialize(*ok);
}

// --- access re-checked on each push -----------------------------------------------------------------

TEST_F(Stream, ARemovedMemberGetsNotFoundAndThenNothingMore) {
  const auto member = join(root_, "member@example.com", "agent");
  WsClient mine;
  open_subscribed(mine, member.token, root_);
  WsClient owners;
  open_subscribed(owners, owner_.token, root_);

  ASSERT_EQ(charge(root_, "e1", 1'000).status, 200u);
  const auto before = read_until(mine, [&](const json::value& m) { return is_balance_of(m, root_); });
  ASSERT_TRUE(!before.empty() && is_balance_of(before.back(), root_)) << "a member is pushed while a member:\n" << dump(before);

  ASSERT_EQ(admin().del("/v1/orgs/" + root_ + "/members/" + member.id).status, 204u);
  ASSERT_EQ(charge(root_, "e2", 2'000).status, 200u);
  const auto after = read_until(mine, [](const json::value& m) { return type_of(m) == "error"; });
  ASSERT_TRUE(!after.empty() && type_of(after.back()) == "error") << "the removed member must be told:\n" << dump(after);
  EXPECT_EQ(str_or(after.back(), "code"), "not_found");
  EXPECT_EQ(str_or(after.back(), "org_id"), root_);
  for (std::size_t i = 0; i + 1 < after.size(); ++i) {
    EXPECT_EQ(json_int(after[i], {"available_balance_micros"}), root_start - 1'000)
        << "nothing after the removal may reach the former member:\n" << dump(after);
  }

  // Later changes reach the owner, never the former member.
  ASSERT_EQ(charge(root_, "e3", 4'000).status, 200u);
  const auto seen = read_until(owners, [&](const json::value& m) {
    return is_balance_of(m, root_) && json_int(m, {"available_balance_micros"}) == root_start - 7'000;
  });
  ASSERT_TRUE(!seen.empty() && is_balance_of(seen.back(), root_)) << dump(seen);
  const auto leaked = read_for(mine, 300ms);
  EXPECT_TRUE(leaked.empty()) << dump(leaked);

  // And subscribing again is refused like any org they cannot see.
  mine.send(subscribe_op(root_));
  const auto again = mine.read_json();
  ASSERT_TRUE(again);
  EXPECT_EQ(str_or(*again, "code"), "not_found") << json::serialize(*again);
}

// --- show credits (snapshot and balance push of a direct member: show_credits_test.cpp) --------------

class StreamShowCredits : public Stream {
 protected:
  void SetUp() override {
    Stream::SetUp();
    t_ = create_sub_org(admin(), root_, "T");
    set_limit(t_, 10'000'000);
    direct_ = join(t_, "direct@example.com", "admin");
  }
  void show_credits(bool on) {
    auto r = admin().put("/v1/orgs/" + t_ + "/settings/show-credits-balance", {{"enabled", on}});
    ASSERT_EQ(r.status, 200u) << r.body;
  }
  std::string t_;
  CreatedUser direct_;
};

TEST_F(StreamShowCredits, TurningItOnWhileSubscribedTakesTheDollarsOutOfTheNextPush) {
  WsClient ws;
  open_subscribed(ws, direct_.token, t_);
  ASSERT_EQ(charge(t_, "e1", 1'000'000).status, 200u);
  const auto with = read_until(ws, [&](const json::value& m) { return is_balance_of(m, t_); });
  ASSERT_TRUE(!with.empty() && is_balance_of(with.back(), t_)) << dump(with);
  EXPECT_EQ(json_int(with.back(), {"cycle_spend_micros"}), 1'000'000) << "off: dollars are shown";

  show_credits(true);
  ASSERT_EQ(charge(t_, "e2", 2'000'000).status, 200u);
  const auto without = read_until(ws, [&](const json::value& m) {
    return is_balance_of(m, t_) && percent_of(m) == 30.0;
  });
  ASSERT_FALSE(without.empty());
  EXPECT_TRUE(is_balance_of(without.back(), t_)) << dump(without);
  for (const auto& m : without) {
    if (percent_of(m) == 30.0) {
      EXPECT_TRUE(micros_in(m).empty()) << "on: no dollars:\n" << dump(without);
    }
  }
}

TEST_F(StreamShowCredits, AlertsPushedToADirectMemberCarryNoDollarsButTheAncestorsAdminSeesThem) {
  show_credits(true);
  ASSERT_EQ(admin().put("/v1/orgs/" + t_ + "/alerts", {{"spend_percent_thresholds", {50}}}).status, 200u);
  WsClient direct;
  open_subscribed(direct, direct_.token, t_);
  WsClient above;
  open_subscribed(above, owner_.token, t_);
  ASSERT_EQ(charge(t_, "e1", 6'000'000).status, 200u);

  const auto is_alert = [](const json::value& m) { return type_of(m) == "alert"; };
  const auto d = read_until(direct, is_alert);
  const auto a = read_until(above, is_alert);
  ASSERT_TRUE(!d.empty() && is_alert(d.back())) << dump(d);
  ASSERT_TRUE(!a.empty() && is_alert(a.back())) << dump(a);
  EXPECT_EQ(json_int(d.back(), {"alert", "data", "threshold_percent"}), 50);
  for (const auto& m : d) EXPECT_TRUE(micros_in(m).empty()) << "direct member:\n" << dump(d);
  EXPECT_EQ(json_int(a.back(), {"alert", "data", "cycle_spend_micros"}), 6'000'000) << dump(a);
  EXPECT_EQ(json_str(d.back(), {"alert", "id"}), json_str(a.back(), {"alert", "id"})) << "the same alert";
}

// --- slow consumers and shutdown ---------------------------------------------------------------------

// A waiting balance push is replaced by a newer one for the same org, so balance pushes alone never
// fill a connection's queue: it holds at most one per subscribed org, beyond the configured bound.
// What piles up behind a reader that stops reading is everything else: here, the answers to the
// messages it keeps sending over the socket, once its socket buffers are full.
//
// How many answers that takes is set by the kernel's buffers more than by the queue: on loopback the
// server's send buffer grows to tcp_wmem's maximum (4 MiB here) and a client's receive buffer is
// autotuned unless set before connecting. Answers of ~100 bytes took 3,000 to 11,000 messages here
// before the close (as many as 40,000 when the kernel packs them tightly), a number that depends on
// how the kernel happens to pack them and that a loaded machine may not get through in time. So the
// slow consumer sets a small receive buffer before connecting, and sends messages whose answers are
// large: an unknown field with a 16 KiB name, which the error names back. Then about 500 messages
// fill every buffer, whatever the kernel does, and a small queue bound fills right after.
constexpr int many_orgs = 300;
constexpr int queue_bound = 16;
constexpr std::size_t flood_name_bytes = 16u << 10;  // well under the 64 KiB message limit
constexpr int flood_messages_max = 2'000;            // ~32 MiB of answers: 8 times the largest send buffer

class StreamSmallQueue : public Stream {
 protected:
  void SetUp() override { boot({"--stream-queue-messages", std::to_string(queue_bound)}); }
};

TEST_F(StreamSmallQueue, ASlowConsumerIsClosedWith1008WhileChargingAndOtherSubscribersGoOn) {
  // Many orgs make many pushes per window: both the slow consumer's queue and the healthy one's hold
  // up to one balance push per org.
  std::vector<std::string> orgs{root_};
  for (int i = 1; i < many_orgs + 1; ++i) orgs.push_back(create_sub_org(admin(), root_, numbered("S", i)));
  grant(*op_, root_, 1'000'000'000);

  WsClient slow;
  slow.set_receive_buffer(4096);
  ASSERT_TRUE(slow.connect(port(), owner_.token));
  WsClient healthy;
  ASSERT_TRUE(healthy.connect(port(), owner_.token));
  for (WsClient* ws : {&slow, &healthy}) {
    for (const auto& org : orgs) {  // one at a time: the answers never pile up during setup
      ws->send(subscribe_op(org));
      const auto m = ws->read_json();
      ASSERT_TRUE(m && type_of(*m) == "subscribed") << (m ? json::serialize(*m) : "nothing");
    }
  }
  // What the flood relies on: the error names the unknown field, so each answer is as large as its name.
  const std::string flood = json::serialize(json::value{{std::string(flood_name_bytes, 'x'), 0}});
  slow.send(flood);
  const auto named = slow.read_type("error");
  ASSERT_TRUE(named) << "no error answered the flood message";
  ASSERT_GE(str_or(*named, "message").size(), flood_name_bytes) << "the error no longer names the field in full";

  // The healthy subscriber (the same subscriptions) reads all the time, on its own thread.
  std::atomic<bool> stop{false};
  // The slow consumer keeps sending messages and reads nothing, bounded in count and time. Once the
  // server has closed it, the server reads no more, so a send blocks for good (a blocking write has
  // no timeout: the test then hung in join): `stop` ends the waiting.
  std::atomic<int> flooded{0};
  std::thread flooder([&] {
    const auto until = Clock::now() + 25s;
    while (flooded < flood_messages_max && slow.send_until(flood, until, &stop)) ++flooded;
  });
  std::mutex mutex;
  std::vector<Clock::time_point> healthy_pushes;
  std::thread reader([&] {
    while (!stop && !healthy.closed()) {
      if (auto m = healthy.read_json(50ms); m && type_of(*m) == "balance") {
        std::lock_guard lock(mutex);
        healthy_pushes.push_back(Clock::now());
      }
    }
  });
  // Charges flow on another thread: batches charging every org at once, timed (bounded in count and time).
  std::vector<unsigned> statuses;
  std::vector<std::chrono::milliseconds> latencies;
  std::size_t refused = 0;
  std::thread charger([&] {
    Client c(port());
    const auto until = Clock::now() + 25s;
    for (int b = 0; b < 5'000 && !stop && Clock::now() < until; ++b) {
      json::array events;
      for (std::size_t i = 1; i < orgs.size(); ++i) {
        events.push_back({{"id", numbered(numbered("b", b) + "-", static_cast<std::int64_t>(i))},
                          {"org_id", orgs[i]},
                          {"type", "assistants.reply"},
                          {"quantity", 1},
                          {"cost_micros", 10}});
      }
      const auto t0 = Clock::now();
      const auto r = c.post("/v1/usage:batch", {{"events", events}});
      latencies.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0));
      statuses.push_back(r.status);
      if (r.status == 200u) {
        const auto answer = r.json();
        for (const auto& item : answer.at("results").as_array()) refused += json_str(item, {"status"}) != "accepted";
      }
    }
  });

  // The server counts the slow close; wait for it (bounded).
  Client watcher(port());
  const auto deadline = Clock::now() + 20s;
  long long closes = 0;
  while (Clock::now() < deadline && (closes = metric(watcher, "canopy_stream_slow_closes_total")) < 1) {
    std::this_thread::sleep_for(20ms);
  }
  const auto closed_at = Clock::now();
  // After the close, the healthy subscriber keeps getting pushes of new states.
  const auto pushes_after_close = [&] {
    std::lock_guard lock(mutex);
    return std::count_if(healthy_pushes.begin(), healthy_pushes.end(), [&](const auto& t) { return t > closed_at; });
  };
  const auto healthy_deadline = Clock::now() + 5s;
  while (Clock::now() < healthy_deadline && pushes_after_close() < many_orgs) std::this_thread::sleep_for(10ms);
  stop = true;
  charger.join();
  reader.join();
  flooder.join();

  ASSERT_EQ(closes, 1) << "the slow consumer was not closed within 20 s of charging (" << flooded
                       << " messages sent to it)";
  EXPECT_GE(pushes_after_close(), many_orgs) << "the healthy subscriber stopped hearing";
  EXPECT_FALSE(healthy.closed()) << "the healthy subscriber was closed with " << healthy.close_code();
  ASSERT_FALSE(statuses.empty());
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 200u), static_cast<std::ptrdiff_t>(statuses.size()))
      << "every batch must be answered 200";
  EXPECT_EQ(refused, 0u);
  const auto slowest = *std::max_element(latencies.begin(), latencies.end());
  EXPECT_LT(slowest, 2s) << "a batch waited " << slowest.count() << " ms: the slow consumer slowed the service";

  // What the slow consumer finds when it finally reads: what was in flight, then close code 1008.
  const auto until = Clock::now() + 10s;
  std::size_t leftover = 0;
  while (!slow.closed() && Clock::now() < until) {
    if (slow.read(200ms)) ++leftover;
  }
  EXPECT_TRUE(slow.closed());
  EXPECT_EQ(slow.close_code(), 1008u) << "after " << leftover << " leftover messages";
  EXPECT_GT(leftover, 0u) << "what was already in its socket is still delivered before the close";
}

// A reader that keeps up is not a slow consumer, however many of its orgs change in one window.
class StreamTinyQueue : public Stream {
 protected:
  void SetUp() override { boot({"--stream-queue-messages", "4"}); }
};

TEST_F(StreamTinyQueue, AReaderThatKeepsUpIsNotClosedWhenMoreOrgsChangeAtOnceThanItsQueueHolds) {
  std::vector<std::string> orgs{root_};
  for (int i = 1; i <= 5; ++i) orgs.push_back(create_sub_org(admin(), root_, numbered("S", i)));
  WsClient ws;
  ASSERT_TRUE(ws.connect(port(), owner_.token));
  for (const auto& org : orgs) {
    ws.send(subscribe_op(org));
    const auto m = ws.read_json();
    ASSERT_TRUE(m && type_of(*m) == "subscribed");
  }
  // One batch moves all six orgs (five sub-orgs and their payer) in the same window.
  json::array events;
  for (std::size_t i = 1; i < orgs.size(); ++i) {
    events.push_back({{"id", numbered("x", static_cast<std::int64_t>(i))}, {"org_id", orgs[i]}, {"type", "assistants.reply"},
                      {"quantity", 1}, {"cost_micros", 10}});
  }
  ASSERT_EQ(op_->post("/v1/usage:batch", {{"events", events}}).status, 200u);
  std::set<std::string> pushed;
  const auto got = read_until(ws, [&](const json::value& m) {
    if (type_of(m) == "balance") pushed.insert(str_or(m, "org_id"));
    return pushed.size() == orgs.size();
  });
  EXPECT_EQ(pushed.size(), orgs.size()) << dump(got);
  EXPECT_FALSE(ws.closed()) << "a reader reading as fast as it can was closed with " << ws.close_code();
}

// A new cycle resumes a paused org (CONTRACT.md "Billing"): its state changes at the cycle start, so
// subscribers hear it then, not only when the next write happens to reach the org.
class StreamManualClock : public Stream {
 protected:
  void SetUp() override { boot({"--clock", "manual"}); }
};

TEST_F(StreamManualClock, APausedOrgIsPushedAsResumedWhenANewCycleStarts) {
  set_limit(root_, 1'000'000);
  ASSERT_EQ(charge(root_, "e1", 1'000'000).status, 200u);  // reaches the limit: paused
  WsClient ws;
  const auto subscribed = open_subscribed(ws, owner_.token, root_);
  ASSERT_TRUE(subscribed.is_object());
  ASSERT_TRUE(subscribed.at("snapshot").at("paused").as_bool()) << json::serialize(subscribed);

  const auto end = json_str(op_->get("/v1/orgs/" + root_ + "/billing").json(), {"cycle", "end"});
  ASSERT_EQ(op_->post("/v1/admin/clock", {{"now", end}}).status, 200u);
  ASSERT_EQ(json_int(op_->get("/v1/orgs/" + root_ + "/billing").json(), {"cycle", "spend_micros"}), 0)
      << "reads show the new cycle";
  const auto got = read_until(ws, [&](const json::value& m) {
    return is_balance_of(m, root_) && has(m, "paused") && m.at("paused") == false;
  });
  ASSERT_FALSE(got.empty()) << "no push within 5 s of the cycle start (no write reached the org)";
  EXPECT_TRUE(is_balance_of(got.back(), root_) && got.back().at("paused") == false) << dump(got);
  EXPECT_EQ(json_int(got.back(), {"cycle_spend_micros"}), 0) << dump(got);
}

TEST_F(Stream, ShutdownClosesEveryStreamWithGoingAway) {
  WsClient a;
  open_subscribed(a, owner_.token, root_);
  WsClient b;
  ASSERT_TRUE(b.connect(port(), owner_.token));  // connected, subscribed to nothing
  auto exit_code = std::async(std::launch::async, [this] { return server_->terminate(); });
  for (WsClient* ws : {&a, &b}) {
    const auto until = Clock::now() + 15s;
    while (!ws->closed() && Clock::now() < until) ws->read(200ms);
    EXPECT_TRUE(ws->closed());
    EXPECT_EQ(ws->close_code(), 1001u);
  }
  EXPECT_EQ(exit_code.get(), 0);
}

}  // namespace
}  // namespace canopy::test
