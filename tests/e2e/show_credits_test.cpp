// Goal: the show-credits visibility rule (CONTRACT.md "Roles and access", "Modules"), seen from outside
// through the real binary.
//
// When an org has "show credits balance" on, a user whose access to it comes only from a membership in
// that org itself receives no dollar amount anywhere (REST bodies, lists, /v1/me, WebSocket pushes):
// no field ending in `_micros` at all, only percentages of the monthly limit. Admins reaching the org
// from an ancestor, and the operator, still see dollars. The setting needs a monthly limit (409
// spending_limit_required), and it is per org: the same person sees dollars in an org without it.
//
// The endpoints exercised are every route registered in net/handlers_*.cpp (`routes.push_back`):
//   orgs:      POST /v1/users, POST /v1/orgs, GET /v1/me, GET/PATCH /v1/orgs/{id},
//              POST/GET /v1/orgs/{id}/sub-orgs
//   members:   GET /v1/orgs/{id}/members, PATCH/DELETE /v1/orgs/{id}/members/{uid},
//              POST /v1/orgs/{id}/invitations, DELETE /v1/orgs/{id}/invitations/{inv},
//              POST /v1/invitations/{token}/accept, PUT/DELETE /v1/orgs/{id}/my-role
//   keys:      POST/GET /v1/orgs/{id}/api-keys, DELETE /v1/orgs/{id}/api-keys/{key}
//   settings:  GET/PUT /v1/orgs/{id}/customization, PUT /v1/orgs/{id}/settings/show-credits-balance
//   billing:   GET /v1/orgs/{id}/billing, PUT …/billing/consolidated, PUT …/billing/spending-limit,
//              PUT/DELETE …/billing/subscription, PUT …/billing/payment-method, PUT …/billing/auto-recharge,
//              POST …/billing/top-ups, POST …/billing/grants, POST …/billing/transfers, GET …/billing/payments
//   usage:     POST /v1/orgs/{id}/usage, POST /v1/usage:batch
//   ops:       POST /v1/admin/clock (404 without the manual clock); /healthz, /readyz, /metrics and
//              /v1/openapi.yaml carry no org data and are not JSON, so they are not scanned.
// Not called by direct members: DELETE /v1/orgs/{id}/members/{uid} and DELETE /v1/orgs/{id}/my-role
// (204 with no body, and they would remove the member under test). GET /v1/orgs/{id}/indicator and
// GET /v1/stream have tests of their own below.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <cmath>
#include <ctime>
#include <map>
#include <optional>
#include <set>

#include "tests/e2e/harness.hpp"

namespace canopy::test {
namespace {

namespace json = boost::json;

constexpr std::int64_t limit_micros = 10'000'000;
constexpr std::int64_t seed_spend = 2'500'000;  // 25.0 % of the limit
constexpr std::int64_t root_grant = 20'000'000;
constexpr std::int64_t t_grant = 10'000'000;

const std::vector<std::string> roles = {"admin", "manager", "developer", "agent"};

// Every path in `v` whose key ends in "_micros".
void find_micros(const json::value& v, const std::string& path, std::vector<std::string>& out) {
  if (v.is_object()) {
    for (const auto& [k, child] : v.as_object()) {
      const std::string key(k);
      const std::string here = path.empty() ? key : path + "." + key;
      if (key.size() >= 7 && key.compare(key.size() - 7, 7, "_micros") == 0) out.push_back(here);
      find_micros(child, here, out);
    }
  } else if (v.is_array()) {
    std::size_t i = 0;
    for (const auto& child : v.as_array()) find_micros(child, path + "[" + std::to_string(i++) + "]", out);
  }
}

std::vector<std::string> micros_in(const HttpResult& r) {
  std::vector<std::string> out;
  if (r.body.empty()) return out;
  boost::system::error_code ec;
  const auto v = json::parse(r.body, ec);
  if (ec) {
    out.push_back("<body is not JSON>");
    return out;
  }
  find_micros(v, "", out);
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Fails (non-fatally) naming every dollar field in the body.
void expect_no_dollars(const HttpResult& r, const std::string& what) {
  const auto found = micros_in(r);
  EXPECT_TRUE(found.empty()) << what << " -> " << r.status << " carries dollar fields [" << joined(found)
                             << "]: " << r.body;
}

const json::value* at(const json::value& v, std::initializer_list<const char*> path) {
  const json::value* cur = &v;
  for (const char* key : path) {
    if (!cur->is_object() || !cur->as_object().contains(key)) return nullptr;
    cur = &cur->at(key);
  }
  return cur;
}

bool has(const json::value& v, std::initializer_list<const char*> path) { return at(v, path) != nullptr; }

// A number at `path` (integer or decimal); NaN when missing.
double number(const json::value& v, std::initializer_list<const char*> path) {
  const auto* p = at(v, path);
  if (!p || !(p->is_double() || p->is_int64() || p->is_uint64())) {
    ADD_FAILURE() << "no number at path in " << json::serialize(v);
    return std::nan("");
  }
  return p->to_number<double>();
}

json::value event(const std::string& id, std::int64_t cost) {
  return {{"id", id}, {"type", "assistants.reply"}, {"quantity", 1}, {"cost_micros", cost}};
}

json::value card() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  return {{"brand", "visa"}, {"last4", "4242"}, {"exp_month", 12}, {"exp_year", tm.tm_year + 1900 + 3}};
}

// One server, one agency: the owner (admin of root R) and a sub-org T with a monthly limit of $10,
// $2.50 spent this cycle, show-credits on, and one direct member of each role.
class ShowCredits : public ::testing::Test {
 protected:
  void boot(bool self_paying) {
    self_paying_ = self_paying;
    server_ = std::make_unique<CanopyProcess>(dir_.str("data"), std::vector<std::string>{"--outbox", dir_.str("outbox")});
    server_->start();
    op_ = std::make_unique<Client>(server_->port());
    owner = create_user(op(), "owner@agency.example", "Owner");
    root = create_root(op(), owner.id, "business", "Agency");
    owner_ = std::make_unique<Client>(server_->port(), owner.token);
    t = create_sub_org(owner_c(), root, "Tenant T");
    grant(op(), root, root_grant);
    grant(op(), t, t_grant);
    if (self_paying) {
      auto r = owner_c().put("/v1/orgs/" + t + "/billing/consolidated", {{"enabled", false}});
      ASSERT_EQ(r.status, 200u) << r.body;
    }
    auto limited = set_limit(owner_c(), t, limit_micros);
    ASSERT_EQ(limited.status, 200u) << limited.body;
    auto used = owner_c().post("/v1/orgs/" + t + "/usage", event("seed-1", seed_spend));
    ASSERT_EQ(used.status, 200u) << used.body;
    auto on = show_credits(owner_c(), t, true);
    ASSERT_EQ(on.status, 200u) << on.body;
    EXPECT_EQ(on.json(), json::parse(R"({"enabled":true})"));
    for (const auto& role : roles) members[role] = join(owner_c(), t, role + "@tenant.example", role);
  }

  HttpResult set_limit(Client& as, const std::string& org, std::optional<std::int64_t> limit) {
    return as.put("/v1/orgs/" + org + "/billing/spending-limit",
                  {{"monthly_limit_micros", limit ? json::value(*limit) : json::value(nullptr)}});
  }
  HttpResult show_credits(Client& as, const std::string& org, bool enabled) {
    return as.put("/v1/orgs/" + org + "/settings/show-credits-balance", {{"enabled", enabled}});
  }

  // Invites `email` into `org` with `role` and accepts anonymously: a new user, direct member only.
  CreatedUser join(Client& inviter, const std::string& org, const std::string& email, const std::string& role) {
    auto invited = inviter.post("/v1/orgs/" + org + "/invitations", {{"email", email}, {"role", role}});
    EXPECT_EQ(invited.status, 201u) << invited.body;
    const auto link = json_str(invited.json(), {"link"});
    Client anonymous(port(), "");
    auto accepted = anonymous.post("/v1/invitations/" + link.substr(link.rfind('/') + 1) + "/accept", {{"name", role}});
    EXPECT_EQ(accepted.status, 200u) << accepted.body;
    expect_no_dollars(accepted, "POST /v1/invitations/{token}/accept");
    return {json_str(accepted.json(), {"user_id"}), json_str(accepted.json(), {"token"})};
  }

  Client& op() { return *op_; }
  Client& owner_c() { return *owner_; }
  std::uint16_t port() const { return server_->port(); }
  Client as(const std::string& role) { return Client(port(), members.at(role).token); }

  bool self_paying_ = false;
  CreatedUser owner;
  std::string root;
  std::string t;
  std::map<std::string, CreatedUser> members;

 private:
  TempDir dir_;
  std::unique_ptr<CanopyProcess> server_;
  std::unique_ptr<Client> op_;
  std::unique_ptr<Client> owner_;
};

class ShowCreditsVariant : public ShowCredits, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override { boot(GetParam()); }
};

std::string variant_name(const ::testing::TestParamInfo<bool>& info) { return info.param ? "SelfPaying" : "Consolidated"; }

// One call: what a direct member of each role sends, and the status they must get.
struct Call {
  std::string method;
  std::string path;
  std::optional<json::value> body;
  std::map<std::string, std::string> headers;
  unsigned ok_status;             // for the roles in `allowed`
  std::set<std::string> allowed;  // empty: nobody
  unsigned denied_status;         // for the others
};

const std::set<std::string> everyone{"admin", "manager", "developer", "agent"};

// --- every response a direct member gets carries no dollar field -------------------------------------

TEST_P(ShowCreditsVariant, EveryResponseADirectMemberOfAnyRoleGetsCarriesNoMicrosField) {
  // A developer member the admin and the manager re-role (PATCH members needs a target).
  const auto extra = join(owner_c(), t, "extra@tenant.example", "developer");
  const std::string T = "/v1/orgs/" + t;
  const std::string R = "/v1/orgs/" + root;

  for (const auto& role : roles) {
    SCOPED_TRACE("direct " + role + " of T (" + std::string(self_paying_ ? "self-paying" : "consolidated") + ")");
    Client c = as(role);
    std::vector<Call> calls = {
        // Reads.
        {"GET", "/v1/me", {}, {}, 200, everyone, 0},
        {"GET", T, {}, {}, 200, everyone, 0},
        {"GET", T + "/sub-orgs", {}, {}, 200, everyone, 0},
        {"GET", T + "/members", {}, {}, 200, everyone, 0},
        {"GET", T + "/customization", {}, {}, 200, everyone, 0},
        {"GET", T + "/billing", {}, {}, 200, {"admin", "manager"}, 403},
        {"GET", T + "/billing/payments", {}, {}, 200, {"admin", "manager"}, 403},
        {"GET", T + "/api-keys", {}, {}, 200, {"admin", "developer"}, 403},
        // The parent is out of reach.
        {"GET", R, {}, {}, 0, {}, 404},
        {"GET", R + "/sub-orgs", {}, {}, 0, {}, 404},
        {"GET", R + "/billing", {}, {}, 0, {}, 404},
        {"GET", R + "/billing/payments", {}, {}, 0, {}, 404},
        // Writes a member may (or may not) make, and what they answer.
        {"PATCH", T, json::value{{"name", "Tenant T"}}, {}, 200, {"admin"}, 403},
        {"PUT", T + "/customization", json::value{{"name", "Tenant T"}, {"contact_email", "billing@tenant.example"}}, {},
         200, {"admin"}, 403},
        {"PUT", T + "/settings/show-credits-balance", json::value{{"enabled", true}}, {}, 200, {"admin"}, 403},
        {"POST", T + "/invitations", json::value{{"email", role + "-guest@example.com"}, {"role", "agent"}}, {}, 201,
         {"admin", "manager"}, 403},
        {"PATCH", T + "/members/" + extra.id, json::value{{"role", role == "admin" ? "developer" : "agent"}}, {}, 200,
         {"admin", "manager"}, 403},
        {"POST", T + "/api-keys", json::value{{"name", "key of " + role}}, {}, 201, {"admin", "developer"}, 403},
        {"PUT", T + "/billing/consolidated", json::value{{"enabled", !self_paying_}}, {}, 0, {}, 403},
        {"PUT", T + "/billing/spending-limit", json::value{{"monthly_limit_micros", limit_micros * 2}}, {}, 0, {}, 403},
        {"PUT", T + "/billing/subscription", json::value{{"plan", "business"}}, {}, 200, {"admin"}, 403},
        {"DELETE", T + "/billing/subscription", {}, {}, 200, {"admin"}, 403},
        {"PUT", T + "/billing/payment-method", card(), {}, 200, {"admin"}, 403},
        {"PUT", T + "/billing/auto-recharge",
         json::value{{"enabled", false}, {"threshold_micros", 0}, {"amount_micros", 0}}, {}, 200, {"admin"}, 403},
        {"POST", T + "/billing/top-ups", json::value{{"amount_micros", 1'000'000}}, {{"Idempotency-Key", "top-" + role}},
         201, {"admin"}, 403},
        {"POST", T + "/billing/grants", json::value{{"amount_micros", 1'000'000}, {"reason", "gift"}}, {}, 0, {}, 403},
        {"POST", T + "/billing/transfers", json::value{{"to_org_id", root}, {"amount_micros", 1'000'000}},
         {{"Idempotency-Key", "tr-" + role}}, 404, {"admin"}, 403},
        {"POST", T + "/usage", event("by-" + role, 500'000), {}, 200, {"admin"}, 403},
        {"POST", "/v1/usage:batch",
         json::value{{"events", json::array{{{"id", "b-" + role}, {"org_id", t}, {"type", "assistants.reply"},
                                             {"quantity", 1}, {"cost_micros", 1}}}}},
         {}, 0, {}, 403},
        {"PUT", T + "/my-role", json::value{{"role", "admin"}}, {}, 0, {}, 403},
        {"POST", "/v1/users", json::value{{"email", role + "-new@example.com"}, {"name", "New"}}, {}, 0, {}, 403},
        {"POST", "/v1/orgs", json::value{{"name", "Mine"}, {"plan", "business"}, {"owner_user_id", members[role].id}}, {},
         0, {}, 403},
        {"POST", "/v1/admin/clock", json::value{{"now", "2030-01-01T00:00:00Z"}}, {}, 0, {}, 404},
        // Refused usage: over the limit (the admin), which also pauses T; last on purpose.
        {"POST", T + "/usage", event("too-much-" + role, 100'000'000), {}, 409, {"admin"}, 403},
    };
    // T's admin may create sub-orgs: that answer, and the child rows it brings, are the SubOrgList tests'.
    if (role != "admin") calls.push_back({"POST", T + "/sub-orgs", json::value{{"name", "Child"}}, {}, 0, {}, 403});
    calls.push_back({"GET", T + "/indicator", {}, {}, 200, everyone, 0});

    std::vector<std::string> created_keys, created_invitations;
    for (const auto& call : calls) {
      const std::string what = call.method + " " + call.path + " as direct " + role;
      SCOPED_TRACE(what);
      const auto r = c.request(call.method, call.path, call.body ? json::serialize(*call.body) : std::string(), call.headers);
      const unsigned expected = call.allowed.count(role) ? call.ok_status : call.denied_status;
      EXPECT_EQ(r.status, expected) << r.body;
      expect_no_dollars(r, what);
      if (r.status == 201 && call.path == T + "/api-keys") created_keys.push_back(json_str(r.json(), {"id"}));
      if (r.status == 201 && call.path == T + "/invitations") created_invitations.push_back(json_str(r.json(), {"id"}));
    }
    // Deletes answer 204 with no body at all.
    for (const auto& key : created_keys) {
      const auto r = c.del(T + "/api-keys/" + key);
      EXPECT_EQ(r.status, 204u) << r.body;
      EXPECT_EQ(r.body, "");
    }
    for (const auto& inv : created_invitations) {
      const auto r = c.del(T + "/invitations/" + inv);
      EXPECT_EQ(r.status, 204u) << r.body;
      EXPECT_EQ(r.body, "");
    }
  }
}

// The percent of the limit stands in for the dollars.
TEST_P(ShowCreditsVariant, DirectMembersSeeThePercentOfTheLimitInstead) {
  for (const auto& role : roles) {
    SCOPED_TRACE("direct " + role);
    Client c = as(role);
    const auto org = c.get("/v1/orgs/" + t);
    ASSERT_EQ(org.status, 200u) << org.body;
    const auto o = org.json();
    EXPECT_DOUBLE_EQ(number(o, {"billing", "percent"}), 25.0) << org.body;
    EXPECT_EQ(at(o, {"billing", "consolidated"}) ? *at(o, {"billing", "consolidated"}) : json::value(),
              json::value(!self_paying_))
        << org.body;
    EXPECT_EQ(json_str(o, {"billing", "payer_org_id"}), self_paying_ ? t : root);
    EXPECT_FALSE(has(o, {"billing", "spend_micros"})) << org.body;
    EXPECT_FALSE(has(o, {"billing", "balance_micros"})) << org.body;
    if (role == "admin" || role == "manager") {
      const auto billing = c.get("/v1/orgs/" + t + "/billing");
      ASSERT_EQ(billing.status, 200u) << billing.body;
      const auto b = billing.json();
      EXPECT_DOUBLE_EQ(number(b, {"cycle", "percent"}), 25.0) << billing.body;
      EXPECT_EQ(at(b, {"cycle", "paused"}) ? *at(b, {"cycle", "paused"}) : json::value(), json::value(false));
      EXPECT_TRUE(has(b, {"cycle", "start"}) && has(b, {"cycle", "end"})) << billing.body;
      EXPECT_FALSE(has(b, {"available_balance_micros"})) << billing.body;
      EXPECT_FALSE(has(b, {"monthly_spending_limit_micros"})) << billing.body;
      EXPECT_FALSE(has(b, {"cycle", "spend_micros"})) << billing.body;
    }
  }
  // The percent follows the spend: $1 more is 35.0 %.
  ASSERT_EQ(owner_c().post("/v1/orgs/" + t + "/usage", event("more", 1'000'000)).status, 200u);
  Client admin = as("admin");
  EXPECT_DOUBLE_EQ(number(admin.get("/v1/orgs/" + t).json(), {"billing", "percent"}), 35.0);
  EXPECT_DOUBLE_EQ(number(admin.get("/v1/orgs/" + t + "/billing").json(), {"cycle", "percent"}), 35.0);
}

// --- ancestors and the operator still see dollars -----------------------------------------------------

TEST_P(ShowCreditsVariant, TheAncestorAdminAndTheOperatorStillSeeDollars) {
  const std::int64_t t_balance = self_paying_ ? t_grant - seed_spend : t_grant;
  Client& owner_client = owner_c();
  for (Client* c : {&owner_client, &op()}) {
    SCOPED_TRACE(c == &op() ? "operator" : "admin of the parent");
    const auto org = c->get("/v1/orgs/" + t);
    ASSERT_EQ(org.status, 200u) << org.body;
    if (self_paying_) {
      EXPECT_EQ(json_int(org.json(), {"billing", "balance_micros"}), t_balance) << org.body;
    } else {
      EXPECT_EQ(json_int(org.json(), {"billing", "spend_micros"}), seed_spend) << org.body;
    }
    const auto billing = c->get("/v1/orgs/" + t + "/billing");
    ASSERT_EQ(billing.status, 200u) << billing.body;
    const auto b = billing.json();
    EXPECT_EQ(json_int(b, {"available_balance_micros"}), t_balance) << billing.body;
    EXPECT_EQ(json_int(b, {"monthly_spending_limit_micros"}), limit_micros) << billing.body;
    EXPECT_EQ(json_int(b, {"cycle", "spend_micros"}), seed_spend) << billing.body;
    EXPECT_DOUBLE_EQ(number(b, {"cycle", "percent"}), 25.0) << billing.body;

    const auto rows = c->get("/v1/orgs/" + root + "/sub-orgs");
    ASSERT_EQ(rows.status, 200u) << rows.body;
    const auto rows_json = rows.json();
    const auto& data = rows_json.at("data").as_array();
    ASSERT_EQ(data.size(), 1u) << rows.body;
    EXPECT_EQ(json_str(data[0], {"id"}), t);
    if (self_paying_) {
      EXPECT_EQ(json_int(data[0], {"billing", "balance_micros"}), t_balance) << rows.body;
    } else {
      EXPECT_EQ(json_int(data[0], {"billing", "spend_micros"}), seed_spend) << rows.body;
    }

    const auto payments = c->get("/v1/orgs/" + t + "/billing/payments");
    ASSERT_EQ(payments.status, 200u) << payments.body;
    const auto payments_json = payments.json();
    const auto& history = payments_json.at("data").as_array();
    ASSERT_EQ(history.size(), 1u) << payments.body;
    EXPECT_EQ(json_str(history[0], {"kind"}), "grant");
    EXPECT_EQ(json_int(history[0], {"amount_micros"}), t_grant);
  }
  // The parent's admin answers to its own limit change in dollars.
  const auto limited = set_limit(owner_c(), t, limit_micros);
  ASSERT_EQ(limited.status, 200u) << limited.body;
  EXPECT_EQ(json_int(limited.json(), {"monthly_spending_limit_micros"}), limit_micros);
}

// An ancestor admin who also holds a direct role in T reaches it from above: still dollars.
TEST_P(ShowCreditsVariant, AnAncestorAdminWithADirectRoleToo) {
  const auto joined = owner_c().put("/v1/orgs/" + t + "/my-role", {{"role", "agent"}});
  ASSERT_EQ(joined.status, 200u) << joined.body;
  EXPECT_EQ(json_str(joined.json(), {"role"}), "agent");
  const auto org = owner_c().get("/v1/orgs/" + t);
  ASSERT_EQ(org.status, 200u) << org.body;
  EXPECT_TRUE(has(org.json(), {"billing", self_paying_ ? "balance_micros" : "spend_micros"})) << org.body;
  const auto billing = owner_c().get("/v1/orgs/" + t + "/billing");
  ASSERT_EQ(billing.status, 200u) << billing.body;
  EXPECT_EQ(json_int(billing.json(), {"cycle", "spend_micros"}), seed_spend) << billing.body;
}

// --- turning it off, turning it on without a limit ---------------------------------------------------

TEST_P(ShowCreditsVariant, TurningItOffRestoresDollarsForDirectMembersAndOnHidesThemAgain) {
  Client admin = as("admin");
  const auto off = show_credits(admin, t, false);
  ASSERT_EQ(off.status, 200u) << off.body;
  EXPECT_EQ(off.json(), json::parse(R"({"enabled":false})"));
  const std::int64_t t_balance = self_paying_ ? t_grant - seed_spend : t_grant;
  for (const auto& role : roles) {
    SCOPED_TRACE("direct " + role + " with show-credits off");
    Client c = as(role);
    const auto org = c.get("/v1/orgs/" + t);
    ASSERT_EQ(org.status, 200u) << org.body;
    if (self_paying_) {
      EXPECT_EQ(json_int(org.json(), {"billing", "balance_micros"}), t_balance) << org.body;
    } else {
      EXPECT_EQ(json_int(org.json(), {"billing", "spend_micros"}), seed_spend) << org.body;
    }
    if (role == "admin" || role == "manager") {
      const auto b = c.get("/v1/orgs/" + t + "/billing");
      ASSERT_EQ(b.status, 200u) << b.body;
      EXPECT_EQ(json_int(b.json(), {"available_balance_micros"}), t_balance) << b.body;
      EXPECT_EQ(json_int(b.json(), {"monthly_spending_limit_micros"}), limit_micros) << b.body;
      EXPECT_EQ(json_int(b.json(), {"cycle", "spend_micros"}), seed_spend) << b.body;
      const auto p = c.get("/v1/orgs/" + t + "/billing/payments");
      ASSERT_EQ(p.status, 200u) << p.body;
      EXPECT_EQ(json_int(p.json().at("data").as_array().at(0), {"amount_micros"}), t_grant) << p.body;
    }
  }
  const auto on = show_credits(admin, t, true);
  ASSERT_EQ(on.status, 200u) << on.body;
  EXPECT_EQ(on.json(), json::parse(R"({"enabled":true})"));
  for (const auto& role : roles) {
    Client c = as(role);
    expect_no_dollars(c.get("/v1/orgs/" + t), "GET T as direct " + role + " after turning it back on");
  }
  expect_no_dollars(admin.get("/v1/orgs/" + t + "/billing"), "GET T/billing as direct admin after turning it back on");
}

using ShowCreditsSetting = ShowCredits;

TEST_F(ShowCreditsSetting, TurningItOnWithoutAMonthlyLimitIs409SpendingLimitRequired) {
  boot(false);
  const auto s = create_sub_org(owner_c(), root, "Sibling S");
  const auto s_admin = join(owner_c(), s, "s-admin@tenant.example", "admin");
  Client direct(port(), s_admin.token);
  for (Client* c : {&owner_c(), &direct, &op()}) {
    const auto r = show_credits(*c, s, true);
    EXPECT_EQ(r.status, 409u) << r.body;
    EXPECT_EQ(r.error_code(), "spending_limit_required") << r.body;
  }
  // A root without a limit, by its own admin, too.
  const auto r = show_credits(owner_c(), root, true);
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(r.error_code(), "spending_limit_required") << r.body;
  // Nothing changed: S's direct admin still sees dollars.
  ASSERT_EQ(owner_c().post("/v1/orgs/" + s + "/usage", event("s-1", 700'000)).status, 200u);
  const auto org = direct.get("/v1/orgs/" + s);
  ASSERT_EQ(org.status, 200u) << org.body;
  EXPECT_EQ(json_int(org.json(), {"billing", "spend_micros"}), 700'000) << org.body;
  // Turning it off needs no limit, and with a limit it can be turned on.
  const auto off = show_credits(direct, s, false);
  EXPECT_EQ(off.status, 200u) << off.body;
  ASSERT_EQ(set_limit(owner_c(), s, 1'000'000).status, 200u);
  const auto on = show_credits(direct, s, true);
  EXPECT_EQ(on.status, 200u) << on.body;
  expect_no_dollars(direct.get("/v1/orgs/" + s), "GET S as its direct admin once on");
  EXPECT_DOUBLE_EQ(number(direct.get("/v1/orgs/" + s).json(), {"billing", "percent"}), 70.0);
}

TEST_F(ShowCreditsSetting, OnlyAnAdminMayChangeItAndTheBodyIsChecked) {
  boot(false);
  for (const auto& role : {"manager", "developer", "agent"}) {
    Client c = as(role);
    const auto r = show_credits(c, t, false);
    EXPECT_EQ(r.status, 403u) << role << ": " << r.body;
    EXPECT_EQ(r.error_code(), "forbidden");
  }
  Client admin = as("admin");
  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({})", "enabled"}, {R"({"enabled":"yes"})", "enabled"}, {R"({"enabled":true,"extra":1})", "extra"}}) {
    const auto r = admin.request("PUT", "/v1/orgs/" + t + "/settings/show-credits-balance", body);
    EXPECT_EQ(r.status, 400u) << body << ": " << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request") << body;
    EXPECT_EQ(json_str(r.json(), {"error", "details", "field"}), field) << body;
  }
  // Still on after all of that.
  expect_no_dollars(admin.get("/v1/orgs/" + t), "GET T as direct admin after refused changes");
}

// --- the rule is per org ------------------------------------------------------------------------------

TEST_F(ShowCreditsSetting, TheRuleIsPerOrgTheSameAdminSeesDollarsInASiblingWithoutIt) {
  boot(false);
  const auto s = create_sub_org(owner_c(), root, "Sibling S");
  ASSERT_EQ(owner_c().post("/v1/orgs/" + s + "/usage", event("s-1", 1'200'000)).status, 200u);
  // T's direct admin joins S as admin too (accepting while signed in).
  auto invited = owner_c().post("/v1/orgs/" + s + "/invitations", {{"email", "admin@tenant.example"}, {"role", "admin"}});
  ASSERT_EQ(invited.status, 201u) << invited.body;
  const auto link = json_str(invited.json(), {"link"});
  Client admin = as("admin");
  const auto accepted = admin.post("/v1/invitations/" + link.substr(link.rfind('/') + 1) + "/accept", json::object{});
  ASSERT_EQ(accepted.status, 200u) << accepted.body;
  EXPECT_EQ(json_str(accepted.json(), {"user_id"}), members["admin"].id);

  const auto in_s = admin.get("/v1/orgs/" + s);
  ASSERT_EQ(in_s.status, 200u) << in_s.body;
  EXPECT_EQ(json_int(in_s.json(), {"billing", "spend_micros"}), 1'200'000) << in_s.body;
  const auto s_billing = admin.get("/v1/orgs/" + s + "/billing");
  ASSERT_EQ(s_billing.status, 200u) << s_billing.body;
  EXPECT_EQ(json_int(s_billing.json(), {"cycle", "spend_micros"}), 1'200'000) << s_billing.body;
  EXPECT_TRUE(has(s_billing.json(), {"available_balance_micros"})) << s_billing.body;

  expect_no_dollars(admin.get("/v1/orgs/" + t), "GET T as its direct admin (also admin of S)");
  expect_no_dollars(admin.get("/v1/orgs/" + t + "/billing"), "GET T/billing as its direct admin (also admin of S)");
  expect_no_dollars(admin.get("/v1/me"), "GET /v1/me");
  // And the other way round: S turned on, T off.
  ASSERT_EQ(set_limit(owner_c(), s, 5'000'000).status, 200u);
  ASSERT_EQ(show_credits(admin, s, true).status, 200u);
  ASSERT_EQ(show_credits(admin, t, false).status, 200u);
  expect_no_dollars(admin.get("/v1/orgs/" + s), "GET S once S is on");
  EXPECT_TRUE(has(admin.get("/v1/orgs/" + t).json(), {"billing", "spend_micros"}));
}

// --- sub-org rows in a show-credits org's list --------------------------------------------------------

// A child's cycle spend is part of T's: a dollar amount in T's list would give T's dollars away. A
// manager, developer or agent of T does not reach the child at all, so nothing lets them see its dollars.
TEST_F(ShowCreditsSetting, TheSubOrgListOfAShowCreditsOrgShowsNoDollarsToItsNonAdminMembers) {
  boot(false);
  const auto child = create_sub_org(owner_c(), t, "Child C");
  ASSERT_EQ(owner_c().post("/v1/orgs/" + child + "/usage", event("c-1", 1'000'000)).status, 200u);
  for (const auto& role : {"manager", "developer", "agent"}) {
    Client c = as(role);
    const auto r = c.get("/v1/orgs/" + t + "/sub-orgs");
    ASSERT_EQ(r.status, 200u) << r.body;
    ASSERT_EQ(r.json().at("data").as_array().size(), 1u) << r.body;
    EXPECT_EQ(json_str(r.json().at("data").as_array()[0], {"id"}), child);
    expect_no_dollars(r, std::string("GET T/sub-orgs as direct ") + role);
    // They do not reach the child itself.
    EXPECT_EQ(c.get("/v1/orgs/" + child).status, 404u);
  }
}

// The stricter reading for T's direct admin: the child's spend in T's list, and the new child in the
// answer to creating it, are dollars of T's spend. (The contract lets an admin reaching an org from above
// see its dollars; the child's own GET is not asserted here.)
TEST_F(ShowCreditsSetting, TheSubOrgListOfAShowCreditsOrgShowsNoDollarsToItsDirectAdmin) {
  boot(false);
  Client admin = as("admin");
  const auto created = admin.post("/v1/orgs/" + t + "/sub-orgs", {{"name", "Child C"}});
  ASSERT_EQ(created.status, 201u) << created.body;
  expect_no_dollars(created, "POST T/sub-orgs as T's direct admin");
  const auto child = json_str(created.json(), {"id"});
  ASSERT_EQ(owner_c().post("/v1/orgs/" + child + "/usage", event("c-1", 1'000'000)).status, 200u);
  const auto r = admin.get("/v1/orgs/" + t + "/sub-orgs");
  ASSERT_EQ(r.status, 200u) << r.body;
  ASSERT_EQ(r.json().at("data").as_array().size(), 1u) << r.body;
  expect_no_dollars(r, "GET T/sub-orgs as T's direct admin");
}

// --- money-moving answers ------------------------------------------------------------------------------

// T pays for itself and has a self-paying child: its direct admin may top up and distribute funds; the
// answers (and a refusal's details) must not carry dollar fields either.
TEST_F(ShowCreditsSetting, TopUpAndTransferAnswersToADirectAdminCarryNoDollars) {
  boot(true);
  const auto child = create_sub_org(owner_c(), t, "Child C");
  ASSERT_EQ(owner_c().put("/v1/orgs/" + child + "/billing/consolidated", {{"enabled", false}}).status, 200u);
  Client admin = as("admin");
  ASSERT_EQ(admin.put("/v1/orgs/" + t + "/billing/payment-method", card()).status, 200u);
  const auto top_up = admin.post("/v1/orgs/" + t + "/billing/top-ups", {{"amount_micros", 2'000'000}},
                                 {{"Idempotency-Key", "top-1"}});
  EXPECT_EQ(top_up.status, 201u) << top_up.body;
  expect_no_dollars(top_up, "POST T/billing/top-ups as T's direct admin");
  const auto moved = admin.post("/v1/orgs/" + t + "/billing/transfers", {{"to_org_id", child}, {"amount_micros", 1'000'000}},
                                {{"Idempotency-Key", "tr-1"}});
  EXPECT_EQ(moved.status, 201u) << moved.body;
  expect_no_dollars(moved, "POST T/billing/transfers as T's direct admin");
  const auto refused = admin.post("/v1/orgs/" + t + "/billing/transfers",
                                  {{"to_org_id", child}, {"amount_micros", 900'000'000}}, {{"Idempotency-Key", "tr-2"}});
  EXPECT_EQ(refused.status, 409u) << refused.body;
  EXPECT_EQ(refused.error_code(), "insufficient_credits") << refused.body;
  expect_no_dollars(refused, "refused POST T/billing/transfers as T's direct admin");
  // The money did move: the parent's admin sees it in dollars.
  EXPECT_EQ(json_int(owner_c().get("/v1/orgs/" + child + "/billing").json(), {"available_balance_micros"}), 1'000'000);
  EXPECT_EQ(json_int(owner_c().get("/v1/orgs/" + t + "/billing").json(), {"available_balance_micros"}),
            t_grant - seed_spend + 2'000'000 - 1'000'000);
}

// --- the indicator ---------------------------------------------------------------------------------------

TEST_F(ShowCreditsSetting, TheIndicatorShowsAPercentUnderShowCreditsAndABalanceWithout) {
  boot(true);
  for (const auto& role : roles) {
    Client c = as(role);
    const auto r = c.get("/v1/orgs/" + t + "/indicator");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(json_str(r.json(), {"kind"}), "usage") << r.body;
    EXPECT_DOUBLE_EQ(number(r.json(), {"percent"}), 25.0) << r.body;
    expect_no_dollars(r, "GET T/indicator as direct " + role);
  }
  Client admin = as("admin");
  ASSERT_EQ(show_credits(admin, t, false).status, 200u);
  const auto r = admin.get("/v1/orgs/" + t + "/indicator");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(json_str(r.json(), {"kind"}), "balance") << r.body;
  EXPECT_EQ(json_int(r.json(), {"balance_micros"}), t_grant - seed_spend) << r.body;
  // On again, then the limit removed (by the admin above, who governs it): no percent to show.
  ASSERT_EQ(show_credits(admin, t, true).status, 200u);
  ASSERT_EQ(set_limit(owner_c(), t, std::nullopt).status, 200u);
  const auto unlimited = as("agent").get("/v1/orgs/" + t + "/indicator");
  ASSERT_EQ(unlimited.status, 200u) << unlimited.body;
  EXPECT_EQ(unlimited.json(), json::parse(R"({"kind":"usage","percent":null})"));
}

// --- WebSocket pushes -----------------------------------------------------------------------

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

class Stream {
 public:
  // nullopt-like: ok() false when the server declined the upgrade with 404.
  Stream(std::uint16_t port, const std::string& token) : ws_(ioc_) {
    beast::get_lowest_layer(ws_).connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    ws_.set_option(websocket::stream_base::decorator(
        [token](websocket::request_type& req) { req.set(beast::http::field::authorization, "Bearer " + token); }));
    websocket::response_type res;
    beast::error_code ec;
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(5));
    ws_.handshake(res, "127.0.0.1", "/v1/stream", ec);
    status_ = res.result_int();
    ok_ = !ec;
  }
  bool ok() const { return ok_; }
  unsigned status() const { return status_; }
  void send(const json::value& v) { ws_.write(asio::buffer(json::serialize(v))); }
  // The next message, or null after `timeout` (an asynchronous read: tcp_stream timeouts do not apply
  // to synchronous ones).
  json::value next(std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    beast::flat_buffer buf;
    beast::error_code ec;
    bool done = false;
    ws_.async_read(buf, [&](beast::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    ioc_.restart();
    ioc_.run_for(timeout);
    if (!done) {
      beast::get_lowest_layer(ws_).cancel();
      ioc_.restart();
      ioc_.run();
      return nullptr;
    }
    if (ec) return nullptr;
    boost::system::error_code pec;
    auto v = json::parse(beast::buffers_to_string(buf.data()), pec);
    return pec ? json::value(nullptr) : v;
  }
  // The next message of `type`, skipping others.
  json::value next_of(const std::string& type) {
    for (int i = 0; i < 20; ++i) {
      auto v = next();
      if (v.is_null()) return v;
      if (v.is_object() && v.as_object().contains("type") && v.at("type") == json::value(type)) return v;
    }
    return nullptr;
  }

 private:
  asio::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
  bool ok_ = false;
  unsigned status_ = 0;
};

TEST_F(ShowCreditsSetting, WebSocketSnapshotsAndPushesCarryNoDollarsForDirectMembers) {
  boot(false);
  Stream direct(port(), members["admin"].token);
  ASSERT_TRUE(direct.ok()) << "upgrade answered " << direct.status();
  Stream above(port(), owner.token);
  ASSERT_TRUE(above.ok()) << "upgrade answered " << above.status();
  direct.send({{"op", "subscribe"}, {"org_id", t}});
  above.send({{"op", "subscribe"}, {"org_id", t}});
  const auto d_sub = direct.next_of("subscribed");
  const auto a_sub = above.next_of("subscribed");
  ASSERT_FALSE(d_sub.is_null());
  ASSERT_FALSE(a_sub.is_null());
  std::vector<std::string> found;
  find_micros(d_sub, "", found);
  EXPECT_TRUE(found.empty()) << "subscribed snapshot for a direct admin: " << json::serialize(d_sub);
  EXPECT_DOUBLE_EQ(number(d_sub, {"snapshot", "percent"}), 25.0) << json::serialize(d_sub);
  EXPECT_EQ(json_int(a_sub, {"snapshot", "cycle_spend_micros"}), seed_spend) << json::serialize(a_sub);

  ASSERT_EQ(owner_c().post("/v1/orgs/" + t + "/usage", event("pushed", 1'000'000)).status, 200u);
  const auto d_push = direct.next_of("balance");
  const auto a_push = above.next_of("balance");
  ASSERT_FALSE(d_push.is_null()) << "no balance push for the direct admin";
  ASSERT_FALSE(a_push.is_null()) << "no balance push for the parent's admin";
  found.clear();
  find_micros(d_push, "", found);
  EXPECT_TRUE(found.empty()) << "balance push for a direct admin: " << json::serialize(d_push);
  EXPECT_DOUBLE_EQ(number(d_push, {"percent"}), 35.0) << json::serialize(d_push);
  EXPECT_EQ(json_int(a_push, {"cycle_spend_micros"}), seed_spend + 1'000'000) << json::serialize(a_push);
  EXPECT_EQ(json_int(a_push, {"monthly_spending_limit_micros"}), limit_micros) << json::serialize(a_push);
}

INSTANTIATE_TEST_SUITE_P(Variants, ShowCreditsVariant, ::testing::Bool(), variant_name);

}  // namespace
}  // namespace canopy::test
