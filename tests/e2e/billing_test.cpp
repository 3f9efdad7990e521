// Goal: consolidated billing behaves as CONTRACT.md "Billing" and "Usage" say, seen from outside through
// the real binary: who pays for an event (the payer chain), spending limits at every level and the
// pause they cause, refusals that charge nothing, exactly-once event ids, batches, billing cycles
// (with the manual clock), grants, cards, top-ups, auto-recharge, transfers, subscriptions and the
// payment history. Every test states one behavior and checks the money did (or did not) move.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <optional>
#include <set>
#include <thread>

#include "tests/e2e/harness.hpp"

namespace canopy::test {
namespace {

namespace json = boost::json;

constexpr std::int64_t free_credits = 5'000'000;  // the contract's default monthly allowance

bool json_bool(const json::value& v, std::initializer_list<const char*> path) {
  const json::value* cur = &v;
  for (const char* key : path) {
    if (!cur->is_object() || !cur->as_object().contains(key)) {
      ADD_FAILURE() << "no " << key << " in " << json::serialize(v);
      return false;
    }
    cur = &cur->at(key);
  }
  if (!cur->is_bool()) {
    ADD_FAILURE() << "not a boolean at path in " << json::serialize(v);
    return false;
  }
  return cur->as_bool();
}

// details.<key> of an error body, or "".
std::string error_detail(const HttpResult& r, const char* key) {
  const auto v = r.json();
  const auto* error = v.is_object() ? v.as_object().if_contains("error") : nullptr;
  const auto* details = error && error->is_object() ? error->as_object().if_contains("details") : nullptr;
  const auto* value = details && details->is_object() ? details->as_object().if_contains(key) : nullptr;
  return value && value->is_string() ? std::string(value->as_string()) : "";
}

struct YearMonth {
  int year;
  int month;  // 1..12
};

YearMonth this_month_utc() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  return {tm.tm_year + 1900, tm.tm_mon + 1};
}

std::string month_start(YearMonth ym) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-01T00:00:00Z", ym.year, ym.month);
  return buf;
}

YearMonth next_month(YearMonth ym) { return ym.month == 12 ? YearMonth{ym.year + 1, 1} : YearMonth{ym.year, ym.month + 1}; }
YearMonth previous_month(YearMonth ym) { return ym.month == 1 ? YearMonth{ym.year - 1, 12} : YearMonth{ym.year, ym.month - 1}; }

json::value event(const std::string& id, std::int64_t cost, const std::string& type = "assistants.reply") {
  return {{"id", id}, {"type", type}, {"quantity", 1}, {"cost_micros", cost}};
}

json::value card(const std::string& last4 = "4242", int exp_month = 12, int exp_year = 0) {
  if (exp_year == 0) exp_year = this_month_utc().year + 3;
  return {{"brand", "visa"}, {"last4", last4}, {"exp_month", exp_month}, {"exp_year", exp_year}};
}

// One server with one tenant: an owner who is admin of a business root, and clients for the operator
// and the owner. Every test gets its own (a fresh data folder, an ephemeral port).
class BillingServer : public ::testing::Test {
 protected:
  void SetUp() override { boot({}); }

  void boot(std::vector<std::string> args) {
    server_ = std::make_unique<CanopyProcess>(dir_.str("data"), std::move(args));
    server_->start();
    op_ = std::make_unique<Client>(server_->port());
    owner = create_user(*op_, "owner@example.com", "Owner");
    root = create_root(*op_, owner.id, "business", "Agency");
    admin_ = std::make_unique<Client>(server_->port(), owner.token);
  }

  // SIGKILLs the server and starts it again on the same data folder; the clients reconnect.
  void restart_after_kill9() {
    server_->kill9();
    server_->start();
    op_ = std::make_unique<Client>(server_->port());
    admin_ = std::make_unique<Client>(server_->port(), owner.token);
  }

  Client& op() { return *op_; }
  Client& admin() { return *admin_; }
  std::uint16_t port() const { return server_->port(); }

  // A sample of /metrics (-1: absent).
  std::int64_t metric(const std::string& name) {
    const auto metrics = op().get("/metrics").body;
    const auto at = metrics.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stoll(metrics.substr(at + name.size() + 2));
  }

  // A second tenant: its owner's token and its root.
  std::pair<std::string, std::string> other_tenant(const std::string& email = "other@example.com") {
    const auto other = create_user(op(), email, "Other");
    return {other.token, create_root(op(), other.id, "business", "Other Agency")};
  }

  json::value billing(const std::string& org) {
    auto r = op().get("/v1/orgs/" + org + "/billing");
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.json();
  }
  std::int64_t balance(const std::string& org) { return json_int(billing(org), {"available_balance_micros"}); }
  std::int64_t spend(const std::string& org) { return json_int(billing(org), {"cycle", "spend_micros"}); }
  bool paused(const std::string& org) { return json_bool(billing(org), {"cycle", "paused"}); }

  HttpResult charge(const std::string& org, const std::string& id, std::int64_t cost) {
    return admin().post("/v1/orgs/" + org + "/usage", event(id, cost));
  }
  HttpResult set_limit(Client& as, const std::string& org, std::optional<std::int64_t> limit) {
    return as.put("/v1/orgs/" + org + "/billing/spending-limit",
                  {{"monthly_limit_micros", limit ? json::value(*limit) : json::value(nullptr)}});
  }
  HttpResult set_consolidated(Client& as, const std::string& org, bool enabled) {
    return as.put("/v1/orgs/" + org + "/billing/consolidated", {{"enabled", enabled}});
  }
  HttpResult top_up(const std::string& org, std::int64_t amount, const std::string& key) {
    return admin().post("/v1/orgs/" + org + "/billing/top-ups", {{"amount_micros", amount}}, {{"Idempotency-Key", key}});
  }
  HttpResult transfer(const std::string& from, const std::string& to, std::int64_t amount, const std::string& key) {
    return admin().post("/v1/orgs/" + from + "/billing/transfers", {{"to_org_id", to}, {"amount_micros", amount}},
                        {{"Idempotency-Key", key}});
  }
  // Every row of the org's payment history, following the cursor.
  std::vector<json::value> payments(const std::string& org, int page_size = 50) {
    std::vector<json::value> rows;
    std::string cursor;
    for (int page = 0; page < 100; ++page) {
      auto r = op().get("/v1/orgs/" + org + "/billing/payments?limit=" + std::to_string(page_size) +
                        (cursor.empty() ? "" : "&cursor=" + cursor));
      EXPECT_EQ(r.status, 200u) << r.body;
      const auto v = r.json();
      for (const auto& row : v.at("data").as_array()) rows.push_back(row);
      if (v.at("next_cursor").is_null()) return rows;
      cursor = std::string(v.at("next_cursor").as_string());
    }
    ADD_FAILURE() << "the payment history never ended";
    return rows;
  }
  std::vector<json::value> payments_of_kind(const std::string& org, const std::string& kind) {
    std::vector<json::value> out;
    for (auto& row : payments(org)) {
      if (json_str(row, {"kind"}) == kind) out.push_back(row);
    }
    return out;
  }

  // A user whose only access to `org` is a direct admin membership in it, made through an invitation
  // (nullopt, the failure reported, if inviting or accepting fails: the caller stops).
  std::optional<std::string> direct_admin_of(const std::string& org, const std::string& email) {
    auto invited = admin().post("/v1/orgs/" + org + "/invitations", {{"email", email}, {"role", "admin"}});
    EXPECT_EQ(invited.status, 201u) << invited.body;
    if (invited.status != 201) return std::nullopt;
    const auto link = json_str(invited.json(), {"link"});
    Client anonymous(port(), "");
    auto accepted = anonymous.post("/v1/invitations/" + link.substr(link.rfind('/') + 1) + "/accept", {{"name", "Direct"}});
    EXPECT_EQ(accepted.status, 200u) << accepted.body;
    if (accepted.status != 200) return std::nullopt;
    return json_str(accepted.json(), {"token"});
  }

  // The server's data folder.
  std::string data_dir() const { return dir_.str("data"); }
  // Stops the server (SIGTERM); returns its exit code.
  int stop() { return server_->terminate(); }

  CreatedUser owner;
  std::string root;

 private:
  TempDir dir_;
  std::unique_ptr<CanopyProcess> server_;
  std::unique_ptr<Client> op_;
  std::unique_ptr<Client> admin_;
};

class ManualClockServer : public BillingServer {
 protected:
  void SetUp() override { boot({"--clock", "manual"}); }

  // Moves the server's clock to the first second of the next cycle; returns that time.
  std::string cross_into_next_cycle() {
    const auto end = json_str(billing(root), {"cycle", "end"});
    auto r = op().post("/v1/admin/clock", {{"now", end}});
    EXPECT_EQ(r.status, 200u) << r.body;
    return end;
  }
};

#define ASSERT_INVITED(token) ASSERT_TRUE((token).has_value()) << "the invitation failed (reported above)"

// --- the payer chain ----------------------------------------------------------------------------

using PayerChain = BillingServer;

TEST_F(PayerChain, ConsolidatedSubOrgsAreChargedToTheRoot) {
  const auto a = create_sub_org(admin(), root, "A");
  const auto b = create_sub_org(admin(), a, "B");
  grant(op(), root, 20'000'000);
  auto r = charge(b, "e1", 1'500'000);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(json_str(r.json(), {"payer_org_id"}), root);
  EXPECT_EQ(json_str(r.json(), {"status"}), "accepted");
  EXPECT_EQ(balance(root), free_credits + 20'000'000 - 1'500'000);
  EXPECT_EQ(balance(a), 0);
  EXPECT_EQ(balance(b), 0);
  // Every org on the chain counts the event in its cycle spend.
  EXPECT_EQ(spend(b), 1'500'000);
  EXPECT_EQ(spend(a), 1'500'000);
  EXPECT_EQ(spend(root), 1'500'000);
  const auto view = billing(b);
  EXPECT_TRUE(json_bool(view, {"consolidated"}));
  EXPECT_EQ(json_str(view, {"payer_org_id"}), root);
}

TEST_F(PayerChain, TurningConsolidatedOffMakesTheSubOrgThePayerFromItsOwnBalance) {
  const auto a = create_sub_org(admin(), root, "A");
  const auto b = create_sub_org(admin(), a, "B");
  grant(op(), root, 20'000'000);
  grant(op(), a, 10'000'000);
  auto toggled = set_consolidated(admin(), a, false);
  ASSERT_EQ(toggled.status, 200u) << toggled.body;
  EXPECT_FALSE(json_bool(toggled.json(), {"consolidated"}));
  EXPECT_EQ(json_str(toggled.json(), {"payer_org_id"}), a);

  auto r = charge(b, "e1", 2'000'000);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(json_str(r.json(), {"payer_org_id"}), a);
  EXPECT_EQ(balance(a), 8'000'000);
  EXPECT_EQ(balance(root), free_credits + 20'000'000);
  // The chain ends at the payer: the root neither pays nor counts the spend.
  EXPECT_EQ(spend(b), 2'000'000);
  EXPECT_EQ(spend(a), 2'000'000);
  EXPECT_EQ(spend(root), 0);
  EXPECT_EQ(json_str(billing(b), {"payer_org_id"}), a);
}

TEST_F(PayerChain, ASelfPayingSubOrgIsNeverChargedToItsParent) {
  const auto a = create_sub_org(admin(), root, "A");
  grant(op(), root, 20'000'000);
  ASSERT_EQ(set_consolidated(admin(), a, false).status, 200u);
  auto r = charge(a, "e1", 1'000'000);
  EXPECT_EQ(r.status, 402u) << r.body;
  EXPECT_EQ(r.error_code(), "insufficient_credits");
  EXPECT_EQ(error_detail(r, "org_id"), a);
  EXPECT_EQ(balance(root), free_credits + 20'000'000);
  EXPECT_EQ(spend(a), 0);
}

TEST_F(PayerChain, TurningConsolidatedBackOnChargesTheParentAgain) {
  const auto a = create_sub_org(admin(), root, "A");
  grant(op(), a, 3'000'000);
  ASSERT_EQ(set_consolidated(admin(), a, false).status, 200u);
  ASSERT_EQ(set_consolidated(admin(), a, true).status, 200u);
  auto r = charge(a, "e1", 1'000'000);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(json_str(r.json(), {"payer_org_id"}), root);
  EXPECT_EQ(balance(root), free_credits - 1'000'000);
  EXPECT_EQ(balance(a), 3'000'000);  // its own balance waits, untouched, for when it pays again
}

TEST_F(PayerChain, AnAdminAboveTheParentMayToggleADeepSubOrg) {
  const auto a = create_sub_org(admin(), root, "A");
  const auto b = create_sub_org(admin(), a, "B");
  const auto c = create_sub_org(admin(), b, "C");
  auto r = set_consolidated(admin(), c, false);
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(json_str(billing(c), {"payer_org_id"}), c);
}

TEST_F(PayerChain, ASubOrgsOwnAdminMayNotToggleItsConsolidatedBilling) {
  const auto a = create_sub_org(admin(), root, "A");
  const auto token = direct_admin_of(a, "a-admin@example.com");
  ASSERT_INVITED(token);
  Client a_admin(port(), *token);
  auto r = set_consolidated(a_admin, a, false);
  EXPECT_EQ(r.status, 403u) << r.body;
  EXPECT_EQ(r.error_code(), "forbidden");
  EXPECT_TRUE(json_bool(billing(a), {"consolidated"}));
}

TEST_F(PayerChain, ARootCannotBeConsolidated) {
  auto r = set_consolidated(admin(), root, true);
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(r.error_code(), "conflict");
  EXPECT_FALSE(json_bool(billing(root), {"consolidated"}));
  EXPECT_EQ(json_str(billing(root), {"payer_org_id"}), root);
}

TEST_F(PayerChain, AnotherTenantCannotSeeTheToggle) {
  const auto a = create_sub_org(admin(), root, "A");
  const auto [token, other_root] = other_tenant();
  Client stranger(port(), token);
  auto r = set_consolidated(stranger, a, false);
  EXPECT_EQ(r.status, 404u) << r.body;
  EXPECT_EQ(r.error_code(), "not_found");
  EXPECT_TRUE(json_bool(billing(a), {"consolidated"}));
}

TEST_F(PayerChain, TheToggleTakesABooleanOnly) {
  const auto a = create_sub_org(admin(), root, "A");
  auto r = admin().put("/v1/orgs/" + a + "/billing/consolidated", {{"enabled", "no"}});
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_TRUE(json_bool(billing(a), {"consolidated"}));
}

// --- spending limits ----------------------------------------------------------------------------

// The limit sits at one level of the chain root > a > b > c, and the event starts at c.
class SpendingLimitAtLevel : public BillingServer, public ::testing::WithParamInterface<int> {};

TEST_P(SpendingLimitAtLevel, AnEventThatWouldPassItIsRefusedNamingThatOrgWhichPauses) {
  const auto a = create_sub_org(admin(), root, "A");
  const auto b = create_sub_org(admin(), a, "B");
  const auto c = create_sub_org(admin(), b, "C");
  const std::vector<std::string> chain{c, b, a, root};
  const auto& limited = chain[static_cast<std::size_t>(GetParam())];
  grant(op(), root, 50'000'000);
  ASSERT_EQ(set_limit(admin(), limited, 5'000'000).status, 200u);
  ASSERT_EQ(charge(c, "e1", 3'000'000).status, 200u);

  auto r = charge(c, "e2", 3'000'000);
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(r.error_code(), "spending_limit_reached");
  EXPECT_EQ(error_detail(r, "org_id"), limited);
  // Nothing of the refused event is charged anywhere on the chain.
  EXPECT_EQ(balance(root), free_credits + 50'000'000 - 3'000'000);
  for (const auto& org : chain) {
    EXPECT_EQ(spend(org), 3'000'000) << org;
    EXPECT_EQ(paused(org), org == limited) << org;
  }
}

std::string level_name(const ::testing::TestParamInfo<int>& info) {
  static const char* const names[] = {"Origin", "Parent", "Grandparent", "Root"};
  return names[info.param];
}

INSTANTIATE_TEST_SUITE_P(EveryLevel, SpendingLimitAtLevel, ::testing::Values(0, 1, 2, 3), level_name);

using SpendingLimit = BillingServer;

TEST_F(SpendingLimit, AnEventThatExactlyReachesTheLimitIsAcceptedAndPauses) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(set_limit(admin(), a, 3'000'000).status, 200u);
  ASSERT_EQ(charge(a, "e1", 3'000'000).status, 200u);
  EXPECT_TRUE(paused(a));
  auto r = charge(a, "e2", 0);
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(error_detail(r, "org_id"), a);
}

TEST_F(SpendingLimit, APausedOrgRefusesEvenEventsThatWouldFit) {
  const auto a = create_sub_org(admin(), root, "A");
  grant(op(), root, 20'000'000);
  ASSERT_EQ(set_limit(admin(), a, 5'000'000).status, 200u);
  ASSERT_EQ(charge(a, "e1", 3'000'000).status, 200u);
  ASSERT_EQ(charge(a, "e2", 3'000'000).status, 409u);
  auto r = charge(a, "e3", 500'000);  // 3.5M would fit under 5M, but the org is paused
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(r.error_code(), "spending_limit_reached");
  EXPECT_EQ(error_detail(r, "org_id"), a);
  EXPECT_EQ(spend(a), 3'000'000);
}

TEST_F(SpendingLimit, APauseStopsOnlyEventsThroughThePausedOrg) {
  const auto a = create_sub_org(admin(), root, "A");
  const auto sibling = create_sub_org(admin(), root, "Sibling");
  ASSERT_EQ(set_limit(admin(), a, 1'000'000).status, 200u);
  ASSERT_EQ(charge(a, "e1", 2'000'000).status, 409u);
  ASSERT_TRUE(paused(a));
  auto r = charge(sibling, "e1", 2'000'000);
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_FALSE(paused(root));
}

TEST_F(SpendingLimit, RaisingTheLimitLiftsThePause) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(set_limit(admin(), a, 1'000'000).status, 200u);
  ASSERT_EQ(charge(a, "e1", 2'000'000).status, 409u);
  ASSERT_TRUE(paused(a));
  auto raised = set_limit(admin(), a, 4'000'000);
  ASSERT_EQ(raised.status, 200u) << raised.body;
  EXPECT_FALSE(json_bool(raised.json(), {"cycle", "paused"}));
  EXPECT_EQ(json_int(raised.json(), {"monthly_spending_limit_micros"}), 4'000'000);
  EXPECT_EQ(charge(a, "e1", 2'000'000).status, 200u);
}

TEST_F(SpendingLimit, RemovingTheLimitLiftsThePause) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(set_limit(admin(), a, 1'000'000).status, 200u);
  ASSERT_EQ(charge(a, "e1", 2'000'000).status, 409u);
  auto removed = set_limit(admin(), a, std::nullopt);
  ASSERT_EQ(removed.status, 200u) << removed.body;
  EXPECT_TRUE(removed.json().at("monthly_spending_limit_micros").is_null());
  EXPECT_FALSE(json_bool(removed.json(), {"cycle", "paused"}));
  EXPECT_EQ(charge(a, "e1", 2'000'000).status, 200u);
}

TEST_F(SpendingLimit, LoweringTheLimitBelowTheSpendPausesAtOnce) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(charge(a, "e1", 3'000'000).status, 200u);
  auto lowered = set_limit(admin(), a, 2'000'000);
  ASSERT_EQ(lowered.status, 200u) << lowered.body;
  EXPECT_TRUE(json_bool(lowered.json(), {"cycle", "paused"}));
  auto r = charge(a, "e2", 1);
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(error_detail(r, "org_id"), a);
  EXPECT_EQ(spend(a), 3'000'000);
}

TEST_F(SpendingLimit, LoweringTheLimitAboveTheSpendLeavesRoomForExactlyTheRest) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(set_limit(admin(), a, 4'000'000).status, 200u);
  ASSERT_EQ(charge(a, "e1", 1'000'000).status, 200u);
  ASSERT_EQ(set_limit(admin(), a, 2'000'000).status, 200u);
  EXPECT_FALSE(paused(a));
  EXPECT_EQ(charge(a, "e2", 1'000'000).status, 200u);
  EXPECT_EQ(spend(a), 2'000'000);
  EXPECT_TRUE(paused(a));
}

TEST_F(SpendingLimit, LoweringTheLimitAboveTheSpendStillRefusesTheOverage) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(set_limit(admin(), a, 4'000'000).status, 200u);
  ASSERT_EQ(charge(a, "e1", 1'000'000).status, 200u);
  ASSERT_EQ(set_limit(admin(), a, 2'000'000).status, 200u);
  auto r = charge(a, "e2", 1'000'001);
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(error_detail(r, "org_id"), a);
  EXPECT_EQ(spend(a), 1'000'000);
}

TEST_F(SpendingLimit, TheParentsAdminSetsASubOrgsLimit) {
  const auto a = create_sub_org(admin(), root, "A");
  auto r = set_limit(admin(), a, 7'000'000);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(json_int(billing(a), {"monthly_spending_limit_micros"}), 7'000'000);
}

TEST_F(SpendingLimit, ASubOrgsOwnAdminMayNotSetItsLimit) {
  const auto a = create_sub_org(admin(), root, "A");
  const auto token = direct_admin_of(a, "a-admin@example.com");
  ASSERT_INVITED(token);
  Client a_admin(port(), *token);
  auto r = set_limit(a_admin, a, 1'000'000'000);
  EXPECT_EQ(r.status, 403u) << r.body;
  EXPECT_EQ(r.error_code(), "forbidden");
  EXPECT_TRUE(billing(a).at("monthly_spending_limit_micros").is_null());
}

TEST_F(SpendingLimit, ARootsOwnAdminSetsTheRootsLimit) {
  auto r = set_limit(admin(), root, 9'000'000);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(json_int(billing(root), {"monthly_spending_limit_micros"}), 9'000'000);
}

TEST_F(SpendingLimit, AnotherTenantCannotSeeTheLimit) {
  const auto [token, other_root] = other_tenant();
  Client stranger(port(), token);
  auto r = set_limit(stranger, root, 1);
  EXPECT_EQ(r.status, 404u) << r.body;
  EXPECT_EQ(r.error_code(), "not_found");
  EXPECT_TRUE(billing(root).at("monthly_spending_limit_micros").is_null());
}

TEST_F(SpendingLimit, ANegativeLimitIsRefused) {
  auto r = set_limit(admin(), root, -1);
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(r.error_code(), "invalid_request");
  EXPECT_TRUE(billing(root).at("monthly_spending_limit_micros").is_null());
}

// --- refusals that charge nothing, and exactly-once ----------------------------------------------

using Charging = BillingServer;

TEST_F(Charging, AnEventThePayerCannotCoverIsRefusedAndChargesNothing) {
  const auto a = create_sub_org(admin(), root, "A");
  auto r = charge(a, "e1", free_credits + 1);
  EXPECT_EQ(r.status, 402u) << r.body;
  EXPECT_EQ(r.error_code(), "insufficient_credits");
  EXPECT_EQ(error_detail(r, "org_id"), root);
  EXPECT_EQ(balance(root), free_credits);
  EXPECT_EQ(spend(a), 0);
  EXPECT_EQ(spend(root), 0);
  EXPECT_FALSE(paused(a));
}

TEST_F(Charging, TheWholeBalanceMayBeSpent) {
  auto r = charge(root, "e1", free_credits);
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(balance(root), 0);
  EXPECT_EQ(charge(root, "e2", 1).status, 402u);
}

TEST_F(Charging, ARefusedEventIsDecidedAfreshWhenRetried) {
  ASSERT_EQ(charge(root, "e1", 8'000'000).status, 402u);
  grant(op(), root, 10'000'000);
  auto r = charge(root, "e1", 8'000'000);
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(balance(root), free_credits + 10'000'000 - 8'000'000);
}

TEST_F(Charging, ARepeatedIdReturnsTheFirstAnswerAndChargesOnce) {
  const auto a = create_sub_org(admin(), root, "A");
  auto first = charge(a, "e1", 2'000'000);
  ASSERT_EQ(first.status, 200u) << first.body;
  auto again = charge(a, "e1", 2'000'000);
  EXPECT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(again.json(), first.json());
  EXPECT_EQ(balance(root), free_credits - 2'000'000);
  EXPECT_EQ(spend(a), 2'000'000);
}

TEST_F(Charging, ARepeatedIdWithAnotherCostStillChargesNothing) {
  ASSERT_EQ(charge(root, "e1", 1'000'000).status, 200u);
  auto again = charge(root, "e1", 4'000'000);
  EXPECT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(balance(root), free_credits - 1'000'000);
}

TEST_F(Charging, ARepeatedIdAnswersWithTheOriginalPayerAfterThePayerChanged) {
  const auto a = create_sub_org(admin(), root, "A");
  grant(op(), a, 5'000'000);
  ASSERT_EQ(charge(a, "e1", 1'000'000).status, 200u);
  ASSERT_EQ(set_consolidated(admin(), a, false).status, 200u);
  auto again = charge(a, "e1", 1'000'000);
  EXPECT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(json_str(again.json(), {"payer_org_id"}), root);
  EXPECT_EQ(balance(a), 5'000'000);
  EXPECT_EQ(balance(root), free_credits - 1'000'000);
}

TEST_F(Charging, TheSameIdInAnotherOrgIsAnotherEvent) {
  const auto a = create_sub_org(admin(), root, "A");
  const auto b = create_sub_org(admin(), root, "B");
  ASSERT_EQ(charge(a, "shared-id", 1'000'000).status, 200u);
  auto r = charge(b, "shared-id", 1'000'000);
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(balance(root), free_credits - 2'000'000);
  EXPECT_EQ(spend(a), 1'000'000);
  EXPECT_EQ(spend(b), 1'000'000);
}

// --- how long ids are remembered ---------------------------------------------------------------
// An accepted id is an idempotency key for --idempotency-retention-days (35 by default), and is
// forgotten within a sweep interval (limits::id_purge_interval_seconds, an hour) after that.

class IdRetention : public ManualClockServer {
 protected:
  // Checkpoints every 200 ms (not every 5 s): the tests wait for an id to reach the index.
  void SetUp() override { boot({"--clock", "manual", "--checkpoint-interval-ms", "200"}); }
  // "YYYY-MM-DDTHH:MM:SSZ" moved by `seconds`.
  static std::string later(const std::string& rfc3339, std::int64_t seconds) {
    std::tm tm{};
    EXPECT_NE(::strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm), nullptr) << rfc3339;
    const std::time_t t = ::timegm(&tm) + seconds;
    std::tm out{};
    ::gmtime_r(&t, &out);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &out);
    return buf;
  }
  void move_clock_to(const std::string& now) {
    auto r = op().post("/v1/admin/clock", {{"now", now}});
    ASSERT_EQ(r.status, 200u) << r.body;
  }
  std::int64_t forgotten() { return metric("canopy_event_ids_forgotten_total"); }
  // Waits (bounded) until the writer has finished `n` sweeps of the index: they run behind clock moves.
  bool wait_sweeps(std::int64_t n) {
    for (int i = 0; i < 200 && metric("canopy_event_id_sweeps_total") < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return metric("canopy_event_id_sweeps_total") >= n;
  }
  // Waits (bounded) until every accepted id is in the store's index, which only the sweep reads: the
  // writer indexes ids with its checkpoints, and until then their origin actor answers for them.
  bool wait_indexed() {
    for (int i = 0; i < 200 && metric("canopy_event_ids_unindexed") != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return metric("canopy_event_ids_unindexed") == 0;
  }
  static constexpr std::int64_t day = 86'400;
};

TEST_F(IdRetention, AnIdIsRememberedForTheWholeRetention) {
  const auto start = cross_into_next_cycle();
  grant(op(), root, 10'000'000);
  auto first = charge(root, "e1", 1'000'000);
  ASSERT_EQ(first.status, 200u) << first.body;
  ASSERT_TRUE(wait_indexed()) << "the id was not indexed within 10 s";  // so the sweep sees it
  const auto sweeps = metric("canopy_event_id_sweeps_total");
  move_clock_to(later(start, 35 * day));  // e1 is exactly as old as the retention: still remembered
  ASSERT_TRUE(wait_sweeps(sweeps + 1)) << "no sweep ran after the clock moved 35 days";
  const auto before = balance(root);
  auto again = charge(root, "e1", 1'000'000);
  EXPECT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(again.json(), first.json());
  EXPECT_EQ(balance(root), before);
  EXPECT_EQ(forgotten(), 0);
}

TEST_F(IdRetention, AnIdOlderThanTheRetentionIsForgottenAndChargesAgain) {
  const auto start = cross_into_next_cycle();
  grant(op(), root, 10'000'000);
  ASSERT_EQ(charge(root, "old", 1'000'000).status, 200u);
  move_clock_to(later(start, 20 * day));
  ASSERT_EQ(charge(root, "younger", 1'000'000).status, 200u);
  ASSERT_TRUE(wait_indexed()) << "the ids were not indexed within 10 s";
  const auto sweeps = metric("canopy_event_id_sweeps_total");
  move_clock_to(later(start, 35 * day + 1));  // "old" is one second past the retention, "younger" 15 days old
  ASSERT_TRUE(wait_sweeps(sweeps + 1)) << "no sweep ran after the clock moved";
  EXPECT_EQ(forgotten(), 1);
  const auto before = balance(root);
  auto old_again = charge(root, "old", 1'000'000);
  EXPECT_EQ(old_again.status, 200u) << old_again.body;
  EXPECT_EQ(balance(root), before - 1'000'000);  // a new event now
  auto younger_again = charge(root, "younger", 1'000'000);
  EXPECT_EQ(younger_again.status, 200u) << younger_again.body;
  EXPECT_EQ(balance(root), before - 1'000'000);  // still a retry
}

// --- batches ------------------------------------------------------------------------------------

using Batch = BillingServer;

TEST_F(Batch, EventsAcrossOrgsAreAnsweredInOrderEachWithItsOwnStatus) {
  const auto a = create_sub_org(admin(), root, "A");
  const auto limited = create_sub_org(admin(), root, "Limited");
  ASSERT_EQ(set_limit(admin(), limited, 1'000'000).status, 200u);
  const auto [other_token, poor_root] = other_tenant();
  const auto free_owner = create_user(op(), "free@example.com", "Free");
  const auto free_root = create_root(op(), free_owner.id, "free", "Free Root");
  grant(op(), root, 10'000'000);

  auto item = [](const std::string& id, const std::string& org, std::int64_t cost, const char* type = "assistants.reply") {
    json::value e = event(id, cost, type);
    e.as_object()["org_id"] = org;
    return e;
  };
  json::array events{
      item("b1", a, 2'000'000),                        // accepted, paid by the root
      item("b2", limited, 2'000'000),                  // past Limited's limit
      item("b3", root, 3'000'000),                     // accepted
      item("b4", poor_root, free_credits + 1),         // more than the other tenant's free credits
      item("b5", "org_doesnotexist", 1),               // no such org
      item("b6", free_root, 1, "broadcasts.sms"),      // not in the free plan
      item("b1", a, 2'000'000),                        // the same id again, still being decided
      item("b7", "org_alsomissing", 1),                // a second unknown org: each refusal names its own
  };
  auto r = op().post("/v1/usage:batch", {{"events", events}});
  ASSERT_EQ(r.status, 200u) << r.body;
  const auto answer = r.json();
  const auto& results = answer.at("results").as_array();
  ASSERT_EQ(results.size(), events.size()) << r.body;
  struct Want {
    const char* id;
    const char* status;
    const char* code;  // refused: the code; accepted: nullptr
    std::string org;   // accepted: the payer; refused: details org_id where the contract names one
  };
  const std::vector<Want> want{
      {"b1", "accepted", nullptr, root},         {"b2", "refused", "spending_limit_reached", limited},
      {"b3", "accepted", nullptr, root},         {"b4", "refused", "insufficient_credits", poor_root},
      {"b5", "refused", "not_found", "org_doesnotexist"},
      {"b6", "refused", "module_disabled", ""},
      {"b1", "refused", "conflict", ""},
      {"b7", "refused", "not_found", "org_alsomissing"},
  };
  for (std::size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE("result " + std::to_string(i) + ": " + json::serialize(results[i]));
    EXPECT_EQ(json_str(results[i], {"id"}), want[i].id);
    EXPECT_EQ(json_str(results[i], {"status"}), want[i].status);
    if (want[i].code) {
      EXPECT_EQ(json_str(results[i], {"code"}), want[i].code);
      if (!want[i].org.empty()) {
        EXPECT_EQ(json_str(results[i], {"org_id"}), want[i].org);
      }
    } else {
      EXPECT_EQ(json_str(results[i], {"payer_org_id"}), want[i].org);
    }
  }
  EXPECT_EQ(balance(root), free_credits + 10'000'000 - 5'000'000);
  EXPECT_EQ(spend(limited), 0);
  EXPECT_TRUE(paused(limited));
  EXPECT_EQ(balance(poor_root), free_credits);
  EXPECT_EQ(balance(free_root), free_credits);
}

TEST_F(Batch, ARetriedBatchChargesNothingMore) {
  const auto a = create_sub_org(admin(), root, "A");
  json::array events;
  for (int i = 0; i < 5; ++i) {
    std::string id = "r";
    id += std::to_string(i);
    json::value e = event(id, 500'000);
    e.as_object()["org_id"] = i % 2 ? a : root;
    events.push_back(e);
  }
  auto first = op().post("/v1/usage:batch", {{"events", events}});
  ASSERT_EQ(first.status, 200u) << first.body;
  auto again = op().post("/v1/usage:batch", {{"events", events}});
  ASSERT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(again.json(), first.json());
  EXPECT_EQ(balance(root), free_credits - 2'500'000);
}

// Each result names its own payer, also when one org's events in one batch have different ones: a
// retried id answers with the payer of its first acceptance, a new one with today's.
TEST_F(Batch, RetriedAndNewEventsOfOneOrgEachNameTheirOwnPayer) {
  const auto a = create_sub_org(admin(), root, "A");
  grant(op(), a, 5'000'000);
  auto item = [&a](const std::string& id) {
    json::value e = event(id, 1'000'000);
    e.as_object()["org_id"] = a;
    return e;
  };
  ASSERT_EQ(op().post("/v1/usage:batch", {{"events", json::array{item("old")}}}).status, 200u);  // paid by the root
  ASSERT_EQ(set_consolidated(admin(), a, false).status, 200u);                              // A pays from now on
  auto r = op().post("/v1/usage:batch", {{"events", json::array{item("new1"), item("old"), item("new2")}}});
  ASSERT_EQ(r.status, 200u) << r.body;
  const auto answer = r.json();
  const auto& results = answer.at("results").as_array();
  ASSERT_EQ(results.size(), 3u) << r.body;
  const std::vector<std::pair<std::string, std::string>> want{{"new1", a}, {"old", root}, {"new2", a}};
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(json_str(results[i], {"id"}), want[i].first) << r.body;
    EXPECT_EQ(json_str(results[i], {"status"}), "accepted") << r.body;
    EXPECT_EQ(json_str(results[i], {"payer_org_id"}), want[i].second) << r.body;
  }
  EXPECT_EQ(balance(a), 3'000'000);
  EXPECT_EQ(balance(root), free_credits - 1'000'000);
}

TEST_F(Batch, AUserTokenMayNotSendABatch) {
  json::value e = event("u1", 1);
  e.as_object()["org_id"] = root;
  auto r = admin().post("/v1/usage:batch", {{"events", json::array{e}}});
  EXPECT_EQ(r.status, 403u) << r.body;
  EXPECT_EQ(balance(root), free_credits);
}

TEST_F(Batch, AMalformedItemRejectsTheWholeBatch) {
  json::value good = event("m1", 1'000'000);
  good.as_object()["org_id"] = root;
  json::value bad = event("m2", -5);
  bad.as_object()["org_id"] = root;
  auto r = op().post("/v1/usage:batch", {{"events", json::array{good, bad}}});
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(r.error_code(), "invalid_request");
  EXPECT_EQ(balance(root), free_credits);
}

// --- billing cycles -----------------------------------------------------------------------------

using Cycles = ManualClockServer;

TEST_F(Cycles, TheCycleIsTheCurrentCalendarMonthInUtc) {
  const auto view = billing(root);
  const auto month = this_month_utc();
  EXPECT_EQ(json_str(view, {"cycle", "start"}), month_start(month));
  EXPECT_EQ(json_str(view, {"cycle", "end"}), month_start(next_month(month)));
}

TEST_F(Cycles, ANewCycleResetsSpendAndLiftsThePause) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(set_limit(admin(), a, 2'000'000).status, 200u);
  ASSERT_EQ(charge(a, "e1", 2'000'000).status, 200u);
  ASSERT_TRUE(paused(a));
  cross_into_next_cycle();
  EXPECT_EQ(spend(a), 0);
  EXPECT_FALSE(paused(a));
  EXPECT_EQ(spend(root), 0);
  auto r = charge(a, "e2", 2'000'000);
  EXPECT_EQ(r.status, 200u) << r.body;
}

TEST_F(Cycles, ReadsShowTheNewCycleBeforeAnyWrite) {
  const auto old_end = json_str(billing(root), {"cycle", "end"});
  ASSERT_EQ(charge(root, "e1", 1'000'000).status, 200u);
  cross_into_next_cycle();
  const auto view = billing(root);  // nothing has written to the root since the clock moved
  EXPECT_EQ(json_str(view, {"cycle", "start"}), old_end);
  EXPECT_GT(json_str(view, {"cycle", "end"}), old_end);
  EXPECT_EQ(json_int(view, {"cycle", "spend_micros"}), 0);
  EXPECT_EQ(json_int(view, {"available_balance_micros"}), 2 * free_credits - 1'000'000);
}

TEST_F(Cycles, TheSubOrgListShowsTheNewCycleBeforeAnyWrite) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(charge(a, "e1", 1'000'000).status, 200u);
  cross_into_next_cycle();
  auto r = admin().get("/v1/orgs/" + root + "/sub-orgs");
  ASSERT_EQ(r.status, 200u) << r.body;
  const auto list = r.json();
  ASSERT_EQ(list.at("data").as_array().size(), 1u);
  EXPECT_EQ(json_int(list.at("data").at(0), {"billing", "spend_micros"}), 0);
}

TEST_F(Cycles, FreeCreditsComeOncePerOwnerEachCycle) {
  const auto second_root = create_root(op(), owner.id, "business", "Second Agency");
  EXPECT_EQ(balance(root), free_credits);
  EXPECT_EQ(balance(second_root), 0);  // only the first root an owner owns gets the allowance
  const auto new_start = cross_into_next_cycle();
  EXPECT_EQ(balance(root), 2 * free_credits);
  EXPECT_EQ(balance(root), 2 * free_credits);  // reading again grants nothing more
  EXPECT_EQ(balance(second_root), 0);
  ASSERT_EQ(charge(root, "e1", 1'000'000).status, 200u);  // a write rolls the cycle over for real
  EXPECT_EQ(balance(root), 2 * free_credits - 1'000'000);
  const auto granted = payments_of_kind(root, "free_credits");
  ASSERT_EQ(granted.size(), 2u);
  EXPECT_EQ(json_str(granted[0], {"created_at"}), new_start);
  EXPECT_TRUE(payments_of_kind(second_root, "free_credits").empty());
}

TEST_F(Cycles, TheHistoryListsTheNewFreeCreditsBeforeAnyWrite) {
  const auto new_start = cross_into_next_cycle();
  ASSERT_EQ(balance(root), 2 * free_credits);  // the read shows the allowance of the new cycle...
  const auto granted = payments_of_kind(root, "free_credits");
  ASSERT_EQ(granted.size(), 2u);
  EXPECT_EQ(json_str(granted[0], {"created_at"}), new_start);
}

TEST_F(Cycles, EachOwnerGetsTheirOwnAllowance) {
  const auto [token, other_root] = other_tenant();
  cross_into_next_cycle();
  EXPECT_EQ(balance(other_root), 2 * free_credits);
  EXPECT_EQ(balance(root), 2 * free_credits);
}

TEST_F(Cycles, TheClockMovesOnlyForwardAndOnlyForTheOperator) {
  const auto month = this_month_utc();
  auto back = op().post("/v1/admin/clock", {{"now", month_start(previous_month(month))}});
  EXPECT_EQ(back.status, 400u) << back.body;
  auto by_admin = admin().post("/v1/admin/clock", {{"now", month_start(next_month(month))}});
  EXPECT_EQ(by_admin.status, 403u) << by_admin.body;
  EXPECT_EQ(json_str(billing(root), {"cycle", "start"}), month_start(month));
}

TEST_F(BillingServer, TheClockCannotBeMovedWithoutTheManualClock) {
  auto r = op().post("/v1/admin/clock", {{"now", month_start(next_month(this_month_utc()))}});
  EXPECT_EQ(r.status, 404u) << r.body;
}

// --- grants -------------------------------------------------------------------------------------

using Grants = BillingServer;

TEST_F(Grants, TheOperatorGrantsCredits) {
  auto r = op().post("/v1/orgs/" + root + "/billing/grants", {{"amount_micros", 7'000'000}, {"reason", "goodwill"}});
  ASSERT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(json_str(r.json(), {"kind"}), "grant");
  EXPECT_EQ(json_str(r.json(), {"status"}), "succeeded");
  EXPECT_EQ(json_int(r.json(), {"amount_micros"}), 7'000'000);
  EXPECT_EQ(balance(root), free_credits + 7'000'000);
  EXPECT_EQ(payments_of_kind(root, "grant").size(), 1u);
}

TEST_F(Grants, AnAdminMayNotGrant) {
  auto r = admin().post("/v1/orgs/" + root + "/billing/grants", {{"amount_micros", 7'000'000}, {"reason", "self"}});
  EXPECT_EQ(r.status, 403u) << r.body;
  EXPECT_EQ(r.error_code(), "forbidden");
  EXPECT_EQ(balance(root), free_credits);
  EXPECT_TRUE(payments_of_kind(root, "grant").empty());
}

TEST_F(Grants, AReasonIsRequired) {
  auto r = op().post("/v1/orgs/" + root + "/billing/grants", {{"amount_micros", 1'000'000}});
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(balance(root), free_credits);
}

TEST_F(Grants, AnAmountOutsideOneToAMillionDollarsIsRefused) {
  for (const std::int64_t amount : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{1'000'000'000'001}}) {
    auto r = op().post("/v1/orgs/" + root + "/billing/grants", {{"amount_micros", amount}, {"reason", "x"}});
    EXPECT_EQ(r.status, 400u) << amount << ": " << r.body;
  }
  EXPECT_EQ(balance(root), free_credits);
}

// --- payment method -----------------------------------------------------------------------------

class PaymentMethod : public BillingServer {
 protected:
  // Stores a valid card first, so "nothing stored" means the valid card is still the one shown.
  void SetUp() override {
    BillingServer::SetUp();
    ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/payment-method", card("4242")).status, 200u);
  }
  void expect_refused_and_unchanged(const json::value& body) {
    auto r = admin().put("/v1/orgs/" + root + "/billing/payment-method", body);
    EXPECT_EQ(r.status, 400u) << json::serialize(body) << " -> " << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request");
    EXPECT_EQ(billing(root).at("payment_method"), card("4242"));
  }
};

TEST_F(PaymentMethod, AValidCardIsStoredAndShown) {
  auto r = admin().put("/v1/orgs/" + root + "/billing/payment-method", card("1881", 3));
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("payment_method"), card("1881", 3));
  EXPECT_EQ(billing(root).at("payment_method"), card("1881", 3));
}

TEST_F(PaymentMethod, Last4MustBeExactlyFourDigits) {
  expect_refused_and_unchanged(card("424"));
  expect_refused_and_unchanged(card("42424"));
  expect_refused_and_unchanged(card("42a4"));
  expect_refused_and_unchanged(card("4242424242424242"));
}

TEST_F(PaymentMethod, ExpMonthMustBeOneToTwelve) {
  expect_refused_and_unchanged(card("4242", 13));
  expect_refused_and_unchanged(card("4242", 0));
}

TEST_F(PaymentMethod, AnExpiredCardIsRefused) {
  const auto last = previous_month(this_month_utc());
  expect_refused_and_unchanged(card("4242", last.month, last.year));
  expect_refused_and_unchanged(card("4242", 12, 2001));
}

TEST_F(PaymentMethod, ExpYearMustHaveFourDigits) {
  expect_refused_and_unchanged(card("4242", 12, 30));
}

TEST_F(PaymentMethod, ACardNumberIsNeverAccepted) {
  json::value body = card("4242");
  body.as_object()["number"] = "4242424242424242";
  expect_refused_and_unchanged(body);
}

TEST_F(PaymentMethod, AnotherTenantCannotSetIt) {
  const auto [token, other_root] = other_tenant();
  Client stranger(port(), token);
  auto r = stranger.put("/v1/orgs/" + root + "/billing/payment-method", card("1111"));
  EXPECT_EQ(r.status, 404u) << r.body;
  EXPECT_EQ(billing(root).at("payment_method"), card("4242"));
}

// --- top-ups ------------------------------------------------------------------------------------

using TopUps = BillingServer;

TEST_F(TopUps, ATopUpNeedsAPaymentMethod) {
  auto r = top_up(root, 10'000'000, "k1");
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(r.error_code(), "payment_method_required");
  EXPECT_EQ(balance(root), free_credits);
  EXPECT_TRUE(payments_of_kind(root, "top_up").empty());
}

TEST_F(TopUps, ATopUpAddsToTheBalance) {
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/payment-method", card()).status, 200u);
  auto r = top_up(root, 10'000'000, "k1");
  ASSERT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(json_str(r.json(), {"kind"}), "top_up");
  EXPECT_EQ(json_str(r.json(), {"status"}), "succeeded");
  EXPECT_EQ(json_int(r.json(), {"amount_micros"}), 10'000'000);
  EXPECT_EQ(balance(root), free_credits + 10'000'000);
}

TEST_F(TopUps, TheSameKeyReturnsTheSamePaymentAndChargesOnce) {
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/payment-method", card()).status, 200u);
  auto first = top_up(root, 10'000'000, "k1");
  ASSERT_EQ(first.status, 201u) << first.body;
  auto again = top_up(root, 10'000'000, "k1");
  EXPECT_EQ(again.status, 201u) << again.body;
  EXPECT_EQ(json_str(again.json(), {"id"}), json_str(first.json(), {"id"}));
  EXPECT_EQ(balance(root), free_credits + 10'000'000);
  EXPECT_EQ(payments_of_kind(root, "top_up").size(), 1u);
}

TEST_F(TopUps, TheSameKeyWithAnotherAmountIsRefused) {
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/payment-method", card()).status, 200u);
  ASSERT_EQ(top_up(root, 10'000'000, "k1").status, 201u);
  auto r = top_up(root, 20'000'000, "k1");
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(r.error_code(), "idempotency_key_reused");
  EXPECT_EQ(balance(root), free_credits + 10'000'000);
}

TEST_F(TopUps, TheIdempotencyKeyIsRequired) {
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/payment-method", card()).status, 200u);
  auto r = admin().post("/v1/orgs/" + root + "/billing/top-ups", {{"amount_micros", 10'000'000}});
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(r.error_code(), "invalid_request");
  EXPECT_EQ(balance(root), free_credits);
}

TEST_F(TopUps, ADeclinedCardIsRefusedAndLeavesAFailedEntry) {
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/payment-method", card("0002")).status, 200u);
  auto r = top_up(root, 10'000'000, "k1");
  EXPECT_EQ(r.status, 402u) << r.body;
  EXPECT_EQ(r.error_code(), "payment_declined");
  const auto payment_id = error_detail(r, "payment_id");
  EXPECT_EQ(payment_id.rfind("pay_", 0), 0u) << r.body;
  EXPECT_EQ(balance(root), free_credits);
  const auto rows = payments_of_kind(root, "top_up");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(json_str(rows[0], {"id"}), payment_id);
  EXPECT_EQ(json_str(rows[0], {"status"}), "failed");
  EXPECT_EQ(json_int(rows[0], {"amount_micros"}), 10'000'000);
}

TEST_F(TopUps, ADeclinedTopUpRetriedWithTheSameKeyAnswersTheSameDecline) {
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/payment-method", card("0002")).status, 200u);
  auto first = top_up(root, 10'000'000, "k1");
  ASSERT_EQ(first.status, 402u) << first.body;
  auto again = top_up(root, 10'000'000, "k1");
  EXPECT_EQ(again.status, 402u) << again.body;
  EXPECT_EQ(error_detail(again, "payment_id"), error_detail(first, "payment_id"));
  EXPECT_EQ(payments_of_kind(root, "top_up").size(), 1u);  // the card was not tried twice
  EXPECT_EQ(balance(root), free_credits);
}

TEST_F(TopUps, AnotherTenantCannotTopUp) {
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/payment-method", card()).status, 200u);
  const auto [token, other_root] = other_tenant();
  Client stranger(port(), token);
  auto r = stranger.post("/v1/orgs/" + root + "/billing/top-ups", {{"amount_micros", 1'000'000}},
                         {{"Idempotency-Key", "k1"}});
  EXPECT_EQ(r.status, 404u) << r.body;
  EXPECT_EQ(balance(root), free_credits);
}

// --- auto-recharge ------------------------------------------------------------------------------

using AutoRecharge = BillingServer;

json::value recharge(std::int64_t threshold, std::int64_t amount) {
  return {{"enabled", true}, {"threshold_micros", threshold}, {"amount_micros", amount}};
}

TEST_F(AutoRecharge, EnablingItNeedsAPaymentMethod) {
  auto r = admin().put("/v1/orgs/" + root + "/billing/auto-recharge", recharge(1'000'000, 20'000'000));
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(r.error_code(), "payment_method_required");
  EXPECT_FALSE(json_bool(billing(root), {"auto_recharge", "enabled"}));
}

TEST_F(AutoRecharge, ItTopsUpFirstWhenAChargeWouldNotBeCovered) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/payment-method", card()).status, 200u);
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/auto-recharge", recharge(1'000'000, 20'000'000)).status, 200u);
  auto r = charge(a, "e1", 8'000'000);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(json_str(r.json(), {"payer_org_id"}), root);
  EXPECT_EQ(balance(root), free_credits + 20'000'000 - 8'000'000);
  const auto rows = payments_of_kind(root, "auto_recharge");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(json_str(rows[0], {"status"}), "succeeded");
  EXPECT_EQ(json_int(rows[0], {"amount_micros"}), 20'000'000);
}

TEST_F(AutoRecharge, ItTopsUpWhenAChargeLeavesTheBalanceBelowTheThreshold) {
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/payment-method", card()).status, 200u);
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/auto-recharge", recharge(3'000'000, 10'000'000)).status, 200u);
  ASSERT_EQ(charge(root, "e1", 4'000'000).status, 200u);
  EXPECT_EQ(balance(root), free_credits - 4'000'000 + 10'000'000);
  EXPECT_EQ(payments_of_kind(root, "auto_recharge").size(), 1u);
}

TEST_F(AutoRecharge, ARechargeAfterAnAcknowledgedChargeSurvivesKill9) {
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/payment-method", card()).status, 200u);
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/auto-recharge", recharge(3'000'000, 10'000'000)).status, 200u);
  ASSERT_EQ(charge(root, "e1", 4'000'000).status, 200u);
  ASSERT_EQ(balance(root), free_credits - 4'000'000 + 10'000'000);  // shown to the client: the card was charged
  restart_after_kill9();
  EXPECT_EQ(balance(root), free_credits - 4'000'000 + 10'000'000);
  EXPECT_EQ(payments_of_kind(root, "auto_recharge").size(), 1u);
}

TEST_F(AutoRecharge, ADeclinedRechargeLeavesTheChargeRefused) {
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/payment-method", card("0002")).status, 200u);
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/auto-recharge", recharge(1'000'000, 20'000'000)).status, 200u);
  auto r = charge(root, "e1", 8'000'000);
  EXPECT_EQ(r.status, 402u) << r.body;
  EXPECT_EQ(r.error_code(), "insufficient_credits");
  EXPECT_EQ(balance(root), free_credits);
  const auto rows = payments_of_kind(root, "auto_recharge");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(json_str(rows[0], {"status"}), "failed");
}

TEST_F(AutoRecharge, ItCanBeTurnedOffWithTheAmountsTheViewShows) {
  // A fresh org's view shows {enabled: false, threshold_micros: 0, amount_micros: 0}; sending that back
  // must be accepted (docs/openapi.yaml AutoRechargeSet: amount_micros "at least 1 when enabled").
  auto r = admin().put("/v1/orgs/" + root + "/billing/auto-recharge",
                       {{"enabled", false}, {"threshold_micros", 0}, {"amount_micros", 0}});
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_FALSE(json_bool(billing(root), {"auto_recharge", "enabled"}));
}

// --- transfers ----------------------------------------------------------------------------------

using Transfers = BillingServer;

TEST_F(Transfers, CreditsMoveToASelfPayingDescendant) {
  const auto a = create_sub_org(admin(), root, "A");
  grant(op(), root, 20'000'000);
  ASSERT_EQ(set_consolidated(admin(), a, false).status, 200u);
  auto r = transfer(root, a, 7'000'000, "t1");
  ASSERT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(balance(root), free_credits + 20'000'000 - 7'000'000);
  EXPECT_EQ(balance(a), 7'000'000);
  const auto out = payments_of_kind(root, "transfer_out");
  const auto in = payments_of_kind(a, "transfer_in");
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(json_int(out[0], {"amount_micros"}), 7'000'000);
  EXPECT_EQ(json_int(in[0], {"amount_micros"}), 7'000'000);
  // The moved credits pay for the descendant's usage.
  auto used = charge(a, "e1", 7'000'000);
  EXPECT_EQ(used.status, 200u) << used.body;
  EXPECT_EQ(json_str(used.json(), {"payer_org_id"}), a);
}

TEST_F(Transfers, TheAnswerNamesBothOrgs) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(set_consolidated(admin(), a, false).status, 200u);
  auto r = transfer(root, a, 1'000'000, "t1");
  ASSERT_EQ(r.status, 201u) << r.body;
  const auto v = r.json();
  EXPECT_EQ(json_str(v, {"id"}).rfind("pay_", 0), 0u);
  EXPECT_EQ(json_int(v, {"amount_micros"}), 1'000'000);
  EXPECT_EQ(json_str(v, {"from_org_id"}), root);
  EXPECT_EQ(json_str(v, {"to_org_id"}), a);
}

TEST_F(Transfers, ASelfPayingGrandchildUnderAConsolidatedChildMayReceive) {
  const auto a = create_sub_org(admin(), root, "A");
  const auto b = create_sub_org(admin(), a, "B");
  ASSERT_EQ(set_consolidated(admin(), b, false).status, 200u);
  auto r = transfer(root, b, 1'000'000, "t1");
  ASSERT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(balance(b), 1'000'000);
  EXPECT_EQ(balance(root), free_credits - 1'000'000);
}

TEST_F(Transfers, AConsolidatedSubOrgCannotReceive) {
  const auto a = create_sub_org(admin(), root, "A");
  auto r = transfer(root, a, 1'000'000, "t1");
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(balance(root), free_credits);
  EXPECT_EQ(balance(a), 0);
}

TEST_F(Transfers, OnlyAStrictDescendantMayReceive) {
  const auto a = create_sub_org(admin(), root, "A");
  const auto b = create_sub_org(admin(), root, "B");
  grant(op(), a, 5'000'000);
  ASSERT_EQ(set_consolidated(admin(), a, false).status, 200u);
  ASSERT_EQ(set_consolidated(admin(), b, false).status, 200u);
  const auto [token, other_root] = other_tenant();
  const std::vector<std::pair<std::string, std::string>> refused{
      {a, root},        // up to the parent
      {a, b},           // to a sibling
      {root, root},     // to itself
      {root, other_root},  // to another tenant
  };
  for (const auto& [from, to] : refused) {
    auto r = transfer(from, to, 1'000'000, "t-" + from + "-" + to);
    EXPECT_EQ(r.status, 404u) << from << " -> " << to << ": " << r.body;
  }
  EXPECT_EQ(balance(root), free_credits);
  EXPECT_EQ(balance(a), 5'000'000);
  EXPECT_EQ(balance(b), 0);
  EXPECT_EQ(balance(other_root), free_credits);
}

TEST_F(Transfers, MoreThanTheAvailableBalanceIsRefused) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(set_consolidated(admin(), a, false).status, 200u);
  auto r = transfer(root, a, free_credits + 1, "t1");
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(r.error_code(), "insufficient_credits");
  EXPECT_EQ(balance(root), free_credits);
  EXPECT_EQ(balance(a), 0);
}

TEST_F(Transfers, TheSameKeyMovesCreditsOnce) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(set_consolidated(admin(), a, false).status, 200u);
  auto first = transfer(root, a, 1'000'000, "t1");
  ASSERT_EQ(first.status, 201u) << first.body;
  auto again = transfer(root, a, 1'000'000, "t1");
  EXPECT_EQ(again.status, 201u) << again.body;
  EXPECT_EQ(json_str(again.json(), {"id"}), json_str(first.json(), {"id"}));
  EXPECT_EQ(balance(root), free_credits - 1'000'000);
  EXPECT_EQ(balance(a), 1'000'000);
}

TEST_F(Transfers, TheSameKeyWithAnotherAmountIsRefused) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(set_consolidated(admin(), a, false).status, 200u);
  ASSERT_EQ(transfer(root, a, 1'000'000, "t1").status, 201u);
  auto r = transfer(root, a, 2'000'000, "t1");
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(r.error_code(), "idempotency_key_reused");
  EXPECT_EQ(balance(a), 1'000'000);
}

TEST_F(Transfers, TheIdempotencyKeyIsRequired) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(set_consolidated(admin(), a, false).status, 200u);
  auto r = admin().post("/v1/orgs/" + root + "/billing/transfers", {{"to_org_id", a}, {"amount_micros", 1'000'000}});
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(balance(a), 0);
}

// --- subscriptions ------------------------------------------------------------------------------

using Subscriptions = BillingServer;

bool row_redundant(const json::value& list, const std::string& org) {
  for (const auto& row : list.at("data").as_array()) {
    if (json_str(row, {"id"}) == org) return json_bool(row, {"redundant_subscription"});
  }
  ADD_FAILURE() << org << " is not in " << json::serialize(list);
  return false;
}

TEST_F(Subscriptions, AConsolidatedSubOrgWithItsOwnSubscriptionIsFlaggedRedundant) {
  const auto a = create_sub_org(admin(), root, "A");
  EXPECT_FALSE(json_bool(billing(a), {"redundant_subscription"}));
  auto r = admin().put("/v1/orgs/" + a + "/billing/subscription", {{"plan", "pay_as_you_go"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_TRUE(json_bool(r.json(), {"redundant_subscription"}));
  EXPECT_EQ(json_str(billing(a), {"subscription", "plan"}), "pay_as_you_go");
  EXPECT_TRUE(json_bool(billing(a), {"redundant_subscription"}));
  EXPECT_TRUE(row_redundant(admin().get("/v1/orgs/" + root + "/sub-orgs").json(), a));
}

TEST_F(Subscriptions, CancellingTheSubscriptionClearsTheFlag) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(admin().put("/v1/orgs/" + a + "/billing/subscription", {{"plan", "business"}}).status, 200u);
  auto r = admin().del("/v1/orgs/" + a + "/billing/subscription");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_TRUE(billing(a).at("subscription").is_null());
  EXPECT_FALSE(json_bool(billing(a), {"redundant_subscription"}));
  EXPECT_FALSE(row_redundant(admin().get("/v1/orgs/" + root + "/sub-orgs").json(), a));
}

TEST_F(Subscriptions, ASelfPayingSubOrgsSubscriptionIsNotRedundant) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(set_consolidated(admin(), a, false).status, 200u);
  ASSERT_EQ(admin().put("/v1/orgs/" + a + "/billing/subscription", {{"plan", "business"}}).status, 200u);
  EXPECT_FALSE(json_bool(billing(a), {"redundant_subscription"}));
  EXPECT_FALSE(row_redundant(admin().get("/v1/orgs/" + root + "/sub-orgs").json(), a));
}

TEST_F(Subscriptions, CancellingWithoutASubscriptionIsNotFound) {
  const auto a = create_sub_org(admin(), root, "A");
  auto r = admin().del("/v1/orgs/" + a + "/billing/subscription");
  EXPECT_EQ(r.status, 404u) << r.body;
  EXPECT_EQ(r.error_code(), "not_found");
}

TEST_F(Subscriptions, AnUnknownPlanIsRefused) {
  const auto a = create_sub_org(admin(), root, "A");
  auto r = admin().put("/v1/orgs/" + a + "/billing/subscription", {{"plan", "platinum"}});
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_TRUE(billing(a).at("subscription").is_null());
}

// --- payment history ----------------------------------------------------------------------------

using PaymentHistory = BillingServer;

TEST_F(PaymentHistory, IsNewestFirstAndPagesWithACursor) {
  for (int i = 1; i <= 5; ++i) grant(op(), root, i * 1'000'000);
  const auto rows = payments(root, 2);  // three pages
  ASSERT_EQ(rows.size(), 6u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(json_str(rows[static_cast<std::size_t>(i)], {"kind"}), "grant");
    EXPECT_EQ(json_int(rows[static_cast<std::size_t>(i)], {"amount_micros"}), (5 - i) * 1'000'000);
  }
  EXPECT_EQ(json_str(rows[5], {"kind"}), "free_credits");
  EXPECT_EQ(json_int(rows[5], {"amount_micros"}), free_credits);
  std::set<std::string> ids;
  for (const auto& row : rows) ids.insert(json_str(row, {"id"}));
  EXPECT_EQ(ids.size(), rows.size()) << "a row appeared on two pages";
  for (std::size_t i = 1; i < rows.size(); ++i) {
    EXPECT_GE(json_str(rows[i - 1], {"created_at"}), json_str(rows[i], {"created_at"}));
  }
}

TEST_F(PaymentHistory, TheLastPageHasNoCursor) {
  auto r = op().get("/v1/orgs/" + root + "/billing/payments?limit=1");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_TRUE(r.json().at("next_cursor").is_null()) << r.body;  // only the free credits
}

TEST_F(PaymentHistory, AForgedCursorIsRefused) {
  auto r = op().get("/v1/orgs/" + root + "/billing/payments?cursor=not-a-cursor");
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(r.error_code(), "invalid_request");
}

TEST_F(PaymentHistory, AnotherTenantCannotReadIt) {
  const auto [token, other_root] = other_tenant();
  Client stranger(port(), token);
  auto r = stranger.get("/v1/orgs/" + root + "/billing/payments");
  EXPECT_EQ(r.status, 404u) << r.body;
}

// --- the journal, trimmed -------------------------------------------------------------------------
// Once the checkpoints cover the journal, its records are folded into the audit base and erased
// (persistence/journal_trim.hpp). Nothing a client or an operator sees changes: a repeated top-up or
// transfer gets its first answer, a repeated event id charges nothing, and `canopy check` and
// `canopy backup` work from the base, also after a kill -9.

class TrimmedJournal : public BillingServer {
 protected:
  // Checkpoints (and so trim rounds) every 100 ms, not every 5 s.
  void SetUp() override { boot({"--checkpoint-interval-ms", "100"}); }
  // Waits (bounded) until the journal is trimmed through every record this process journaled (the
  // data folder is fresh, so that is every record).
  bool wait_trimmed() {
    const auto records = metric("canopy_journal_records_total");
    for (int i = 0; i < 200 && metric("canopy_journal_trimmed_through") < records; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return metric("canopy_journal_trimmed_through") >= records;
  }
};

TEST_F(TrimmedJournal, RepeatsAreAnsweredAndCheckAndBackupAgreeOnceTheRecordsAreGone) {
  const auto a = create_sub_org(admin(), root, "A");
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/billing/payment-method", card()).status, 200u);
  ASSERT_EQ(set_consolidated(admin(), a, false).status, 200u);
  const auto paid = top_up(root, 10'000'000, "k1");
  ASSERT_EQ(paid.status, 201u) << paid.body;
  const auto moved = transfer(root, a, 3'000'000, "t1");
  ASSERT_EQ(moved.status, 201u) << moved.body;
  ASSERT_EQ(charge(a, "e1", 1'000'000).status, 200u);
  ASSERT_TRUE(wait_trimmed()) << "trimmed through " << metric("canopy_journal_trimmed_through") << " of "
                              << metric("canopy_journal_records_total");
  EXPECT_GT(metric("canopy_journal_records_trimmed_total"), 0);
  EXPECT_EQ(metric("canopy_journal_trim_stopped"), 0);

  const auto expect_first_answers = [&] {
    const auto again = top_up(root, 10'000'000, "k1");
    EXPECT_EQ(again.status, 201u) << again.body;
    EXPECT_EQ(again.json(), paid.json());
    EXPECT_EQ(top_up(root, 20'000'000, "k1").error_code(), "idempotency_key_reused");
    const auto moved_again = transfer(root, a, 3'000'000, "t1");
    EXPECT_EQ(moved_again.status, 201u) << moved_again.body;
    EXPECT_EQ(moved_again.json(), moved.json());
    EXPECT_EQ(charge(a, "e1", 1'000'000).status, 200u);
    EXPECT_EQ(balance(root), free_credits + 10'000'000 - 3'000'000);
    EXPECT_EQ(balance(a), 3'000'000 - 1'000'000);
  };
  expect_first_answers();

  const auto backup = run_canopy({"backup", data_dir(), data_dir() + "-copy"});
  ASSERT_EQ(backup.exit_code, 0) << backup.out;
  const auto copy = run_canopy({"check", data_dir() + "-copy"});
  EXPECT_EQ(copy.exit_code, 0) << copy.out;
  EXPECT_NE(copy.out.find("audit base"), std::string::npos) << copy.out;

  restart_after_kill9();
  expect_first_answers();
  EXPECT_EQ(stop(), 0);
  const auto checked = run_canopy({"check", data_dir()});
  EXPECT_EQ(checked.exit_code, 0) << checked.out;
  EXPECT_NE(checked.out.find("consistent"), std::string::npos) << checked.out;
}

TEST_F(TrimmedJournal, BackupsTakenWhileChargesAreTrimmedAuditCleanAndServe) {
  // Charges go on (bounded: at most 3,000, at most 20 s) while three backups are taken, each racing
  // the checkpoints, the audit base's commits and the erases behind them.
  const auto a = create_sub_org(admin(), root, "A");
  grant(op(), root, 1'000'000'000);
  std::atomic<bool> done{false};
  std::atomic<int> accepted{0};
  std::thread charging([&] {
    Client client(port(), owner.token);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (int i = 0; i < 3000 && !done && std::chrono::steady_clock::now() < deadline; ++i) {
      const auto r = client.post("/v1/orgs/" + a + "/usage", event("load-" + std::to_string(i), 1'000));
      if (r.status == 200) ++accepted;
    }
  });
  std::vector<std::string> copies;
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    copies.push_back(data_dir() + "-copy-" + std::to_string(i));
    const auto backup = run_canopy({"backup", data_dir(), copies.back()});
    EXPECT_EQ(backup.exit_code, 0) << backup.out;
  }
  done = true;
  charging.join();
  EXPECT_GT(accepted.load(), 0);
  EXPECT_GT(metric("canopy_journal_records_trimmed_total"), 0);
  for (const auto& copy : copies) {
    const auto checked = run_canopy({"check", copy});
    EXPECT_EQ(checked.exit_code, 0) << copy << ": " << checked.out;
  }
  // The last copy serves: it recovers, and its balances add up to what it holds.
  CanopyProcess restored(copies.back());
  restored.start();
  Client restored_op(restored.port());
  const auto view = restored_op.get("/v1/orgs/" + root + "/billing");
  ASSERT_EQ(view.status, 200u) << view.body;
  const auto charged = free_credits + 1'000'000'000 - json_int(view.json(), {"available_balance_micros"});
  EXPECT_EQ(charged % 1'000, 0);
  EXPECT_LE(charged, std::int64_t{accepted.load()} * 1'000);
  EXPECT_EQ(restored.terminate(), 0);
  const auto after = run_canopy({"check", copies.back()});
  EXPECT_EQ(after.exit_code, 0) << after.out;
}

}  // namespace
}  // namespace canopy::test
