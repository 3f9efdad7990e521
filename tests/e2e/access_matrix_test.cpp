// Goal: the access matrix of CONTRACT.md "Roles and access", as one table: every route the server
// registers × every kind of caller → the status (and error code) it must get.
//
// Callers: the operator; the target org T's own admin, manager, developer and agent; an admin of T's
// parent (oversight from above, not a member of T); an admin of T's sibling; an admin of T's child; the
// admin of another tenant; an org API key of T; no token; a forged user token. Non-members never learn
// that T exists (404 not_found, never 403); members lacking the permission get 403 forbidden; a missing
// or unknown token gets 401 unauthenticated.
//
// The table is the single place a route's access is written down: EveryServerRouteHasARow reads the
// routes the server registers (net/*.cpp, at test time) and fails when a route has no row, or a row
// names a route the server does not have.
//
// The world, built through the public API (members join through invitations):
//
//   R (business, admin: r_admin) ── T (admin, manager, developer, agent; API key) ── C (admin: c_admin)
//                                └─ S (admin: s_admin)
//   X (business, admin: x_admin)          Sink (business; where invitations are accepted)
//
// One server serves the whole matrix. Cells that consume something (a member to remove, a key to
// revoke, an invitation to accept) get a throwaway one of their own; rows that change T's membership
// are marked, and T's membership is checked (and restored) after every row, as is the server's ability
// to create users.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "tests/e2e/harness.hpp"

namespace canopy::test {
namespace {

namespace json = boost::json;

// ------------------------------------------------------------------------------------------------
// Callers and expectations
// ------------------------------------------------------------------------------------------------

enum class Who : std::size_t {
  op,              // the operator token
  admin,           // admin of T (direct)
  manager,         // manager of T
  developer,       // developer of T
  agent,           // agent of T
  ancestor_admin,  // admin of R, T's parent; not a member of T
  sibling_admin,   // admin of S (R's other child) only
  child_admin,     // admin of C (T's child) only
  other_tenant,    // admin of X, another root
  api_key,         // an org API key of T
  no_token,        // no Authorization header
  forged,          // a well-formed user token nobody was given
};
constexpr std::size_t who_count = 12;
constexpr std::array<const char*, who_count> who_names{
    "operator",      "T admin",      "T manager",   "T developer", "T agent",  "ancestor (R) admin",
    "sibling (S) admin", "child (C) admin", "other tenant admin", "T API key", "no token", "forged token"};
constexpr std::array<Who, who_count> everyone{Who::op,           Who::admin,         Who::manager,
                                              Who::developer,    Who::agent,         Who::ancestor_admin,
                                              Who::sibling_admin, Who::child_admin,  Who::other_tenant,
                                              Who::api_key,      Who::no_token,      Who::forged};
constexpr std::size_t at(Who w) { return static_cast<std::size_t>(w); }

struct Expect {
  unsigned status;
  const char* code;  // error.code for an error status, "" for a success
};
constexpr Expect k200{200, ""};
constexpr Expect k201{201, ""};
constexpr Expect k204{204, ""};
constexpr Expect k401{401, "unauthenticated"};
constexpr Expect k403{403, "forbidden"};
constexpr Expect k404{404, "not_found"};

// ------------------------------------------------------------------------------------------------
// The world
// ------------------------------------------------------------------------------------------------

struct Principal {
  std::string id;
  std::string token;
  std::string email;
};

struct Invitation {
  std::string id;
  std::string token;  // the secret at the end of the link
};

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string forged_user_token() {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device rd;
  std::mt19937 gen(rd());
  std::uniform_int_distribution<std::size_t> pick(0, 63);
  std::string token = "cu_";
  for (int i = 0; i < 43; ++i) token += alphabet[pick(gen)];
  return token;
}

class World {
 public:
  World() : server_(dir_.str("data"), {"--clock", "manual", "--outbox", dir_.str("outbox")}) {
    std::filesystem::create_directories(dir_.path() / "outbox");
  }

  // Builds the world; fails the test (fatally) if any step is refused.
  void build() {
    server_.start();
    op_client = std::make_unique<Client>(server_.port());
    caller = std::make_unique<Client>(server_.port(), "");
    Client& o = *op_client;

    r_admin = user("r-admin@agency.example", "Rhea Root");
    x_admin = user("x-admin@other.example", "Xavier Other");
    sink_owner = user("sink@sink.example", "Sink Owner");
    R = create_root(o, r_admin.id, "business", "R");
    X = create_root(o, x_admin.id, "business", "X");
    sink = create_root(o, sink_owner.id, "business", "Sink");

    Client as_r(server_.port(), r_admin.token);
    T = create_sub_org(as_r, R, "T");
    C = create_sub_org(as_r, T, "C");
    S = create_sub_org(as_r, R, "S");
    ASSERT_FALSE(T.empty() || C.empty() || S.empty());

    t_admin = member_via_invitation(as_r, T, "admin", "t-admin@agency.example");
    t_manager = member_via_invitation(as_r, T, "manager", "t-manager@agency.example");
    t_developer = member_via_invitation(as_r, T, "developer", "t-developer@agency.example");
    t_agent = member_via_invitation(as_r, T, "agent", "t-agent@agency.example");
    s_admin = member_via_invitation(as_r, S, "admin", "s-admin@agency.example");
    c_admin = member_via_invitation(as_r, C, "admin", "c-admin@agency.example");

    Client as_t(server_.port(), t_admin.token);
    auto key = as_t.post("/v1/orgs/" + T + "/api-keys", {{"name", "T ingest"}});
    ASSERT_EQ(key.status, 201u) << key.body;
    t_key = json_str(key.json(), {"key"});
    forged = forged_user_token();

    // What the permitted calls need in order to succeed: a card for top-ups, credits to transfer, a
    // self-paying child to transfer them to.
    auto card = o.put("/v1/orgs/" + T + "/billing/payment-method", card_body());
    ASSERT_EQ(card.status, 200u) << card.body;
    grant(o, T, 1'000'000'000);
    auto self_paying = o.put("/v1/orgs/" + C + "/billing/consolidated", {{"enabled", false}});
    ASSERT_EQ(self_paying.status, 200u) << self_paying.body;

    ASSERT_EQ(membership_problems(), "");
    ASSERT_FALSE(::testing::Test::HasFailure()) << "the world could not be built";
  }

  static json::value card_body() {
    const int year = std::stoi(rfc3339(std::chrono::system_clock::now()).substr(0, 4));
    return {{"brand", "visa"}, {"last4", "4242"}, {"exp_month", 12}, {"exp_year", year + 3}};
  }

  std::string token(Who who) const {
    switch (who) {
      case Who::op: return operator_token;
      case Who::admin: return t_admin.token;
      case Who::manager: return t_manager.token;
      case Who::developer: return t_developer.token;
      case Who::agent: return t_agent.token;
      case Who::ancestor_admin: return r_admin.token;
      case Who::sibling_admin: return s_admin.token;
      case Who::child_admin: return c_admin.token;
      case Who::other_tenant: return x_admin.token;
      case Who::api_key: return t_key;
      case Who::no_token: return "";
      case Who::forged: return forged;
    }
    return "";
  }

  // A name no earlier call used ("stem-17").
  std::string unique(const std::string& stem) { return stem + "-" + std::to_string(++counter_); }
  std::string unique_email(const std::string& stem) { return unique(stem) + "@throwaway.example"; }

  Principal user(const std::string& email, const std::string& name) {
    const auto u = create_user(*op_client, email, name);
    return {u.id, u.token, email};
  }

  Invitation invite(Client& as, const std::string& org, const std::string& email, const std::string& role) {
    auto r = as.post("/v1/orgs/" + org + "/invitations", {{"email", email}, {"role", role}});
    EXPECT_EQ(r.status, 201u) << "inviting " << email << " to " << org << ": " << r.body;
    const std::string link = json_str(r.json(), {"link"});
    const auto slash = link.rfind("/invite/");
    EXPECT_NE(slash, std::string::npos) << link;
    return {json_str(r.json(), {"id"}), slash == std::string::npos ? "" : link.substr(slash + 8)};
  }

  // Makes a user (the operator's POST /v1/users), invites their email to `org` as `role` and accepts
  // with their token. (Accepting without a token, as a new user, is the accept row's own business; see
  // the note there.)
  Principal member_via_invitation(Client& as, const std::string& org, const std::string& role, const std::string& email) {
    const Principal p = user(email, "Member " + role);
    const auto inv = invite(as, org, email, role);
    Client as_user(server_.port(), p.token);
    auto r = as_user.post("/v1/invitations/" + inv.token + "/accept", json::object{});
    EXPECT_EQ(r.status, 200u) << "accepting " << email << ": " << r.body;
    EXPECT_EQ(r.json(), (json::value{{"user_id", p.id}, {"org_id", org}, {"role", role}})) << r.body;
    return p;
  }

  // A member of T nobody else relies on (an agent), for a cell that changes or removes a member.
  std::string throwaway_member_of_t() {
    return member_via_invitation(*op_client, T, "agent", unique_email("member")).id;
  }

  std::string throwaway_key_of_t() {
    auto r = op_client->post("/v1/orgs/" + T + "/api-keys", {{"name", unique("throwaway key")}});
    EXPECT_EQ(r.status, 201u) << r.body;
    return json_str(r.json(), {"id"});
  }

  // T's active members: user id → role.
  std::map<std::string, std::string> t_roles() {
    std::map<std::string, std::string> roles;
    auto r = op_client->get("/v1/orgs/" + T + "/members?limit=500");
    EXPECT_EQ(r.status, 200u) << r.body;
    const auto v = r.json();
    if (!v.is_object() || !v.as_object().contains("data") || !v.at("data").is_array()) return roles;
    EXPECT_TRUE(v.at("next_cursor").is_null()) << "more than 500 rows in T's member list";
    for (const auto& row : v.at("data").as_array()) {
      const auto* user = row.is_object() ? row.as_object().if_contains("user_id") : nullptr;
      const auto* status = row.is_object() ? row.as_object().if_contains("status") : nullptr;
      if (!user || !user->is_string() || !status || !status->is_string() || status->as_string() != "active") continue;
      roles[std::string(row.at("user_id").as_string())] = std::string(row.at("role").as_string());
    }
    return roles;
  }

  // The memberships every row relies on; "" when they hold.
  std::string membership_problems() {
    const auto roles = t_roles();
    std::string out;
    for (const auto& [p, role] : direct_members()) {
      const auto it = roles.find(p->id);
      if (it == roles.end()) out += p->email + " is no longer a member of T; ";
      else if (it->second != role) out += p->email + " is " + it->second + " of T, not " + role + "; ";
    }
    for (const Principal* p : outsiders()) {
      if (roles.count(p->id)) out += p->email + " became a direct member of T; ";
    }
    return out;
  }

  // Puts T's membership back as built (after a row that is expected to change it).
  void restore_memberships() {
    const auto roles = t_roles();
    Client& o = *op_client;
    for (const auto& [p, role] : direct_members()) {
      const auto it = roles.find(p->id);
      if (it == roles.end()) {
        const auto inv = invite(o, T, p->email, role);
        Client as_user(server_.port(), p->token);
        auto r = as_user.post("/v1/invitations/" + inv.token + "/accept", json::object{});
        EXPECT_EQ(r.status, 200u) << "restoring " << p->email << ": " << r.body;
      } else if (it->second != role) {
        auto r = o.patch("/v1/orgs/" + T + "/members/" + p->id, {{"role", role}});
        EXPECT_EQ(r.status, 200u) << "restoring " << p->email << ": " << r.body;
      }
    }
    for (const Principal* p : outsiders()) {
      if (!roles.count(p->id)) continue;
      auto r = o.del("/v1/orgs/" + T + "/members/" + p->id);
      EXPECT_EQ(r.status, 204u) << "removing " << p->email << " from T: " << r.body;
    }
  }

  std::uint16_t port() const { return server_.port(); }

  std::unique_ptr<Client> op_client;
  std::unique_ptr<Client> caller;  // the cell's request, with the cell's token
  std::string R, T, C, S, X, sink;
  Principal r_admin, x_admin, sink_owner, t_admin, t_manager, t_developer, t_agent, s_admin, c_admin;
  std::string t_key;
  std::string forged;

 private:
  std::vector<std::pair<const Principal*, std::string>> direct_members() const {
    return {{&t_admin, "admin"}, {&t_manager, "manager"}, {&t_developer, "developer"}, {&t_agent, "agent"}};
  }
  std::vector<const Principal*> outsiders() const { return {&r_admin, &s_admin, &c_admin, &x_admin}; }

  TempDir dir_;
  CanopyProcess server_;
  int counter_ = 0;
};

// ------------------------------------------------------------------------------------------------
// The table
// ------------------------------------------------------------------------------------------------

// One cell's request: the values for the route's {} segments (in order), a body, extra headers.
struct Call {
  std::vector<std::string> params;
  json::value body = nullptr;  // null: no body
  std::map<std::string, std::string> headers = {};
};

struct Row {
  std::string method;  // GET, POST, PUT, PATCH, DELETE
  std::string route;   // exactly as the server registers it, {} for each path parameter
  //        op, T admin, manager, developer, agent, ancestor, sibling, child, other tenant, key, none, forged
  std::array<Expect, who_count> expect;
  // Builds one cell's request (creating whatever throwaway object the cell consumes).
  std::function<Call(World&, Who)> call;
  // The permitted calls of this row change T's membership on purpose (restored after the row).
  bool changes_memberships = false;
  // Answered 403 before the org is looked up (operator-only): the same answer for every org id, so it
  // leaks nothing, and non-members get it too.
  bool operator_only = false;
  // Extra checks of a success body, where the status alone does not say the call did its work.
  std::function<void(const HttpResult&)> check_success = nullptr;
};

json::value usage_event(World& w) {
  return {{"id", w.unique("evt")}, {"type", "assistants.reply"}, {"quantity", 1}, {"cost_micros", 1000}};
}

std::vector<Row> matrix() {
  // Column order: op, admin, manager, developer, agent, ancestor, sibling, child, other, key, none, forged.
  std::vector<Row> rows;
  auto T = [](World& w, Who) { return Call{{w.T}}; };

  // --- users, roots, the switcher (net/handlers_orgs.cpp) ------------------------------------------
  rows.push_back({"POST", "/v1/users",
                  {k201, k403, k403, k403, k403, k403, k403, k403, k403, k403, k401, k401},
                  [](World& w, Who) { return Call{{}, {{"email", w.unique_email("user")}, {"name", "New User"}}}; },
                  false, true});
  rows.push_back({"POST", "/v1/orgs",
                  {k201, k403, k403, k403, k403, k403, k403, k403, k403, k403, k401, k401},
                  [](World& w, Who) {
                    return Call{{}, {{"name", w.unique("Root")}, {"plan", "business"}, {"owner_user_id", w.sink_owner.id}}};
                  },
                  false, true});
  // Every user has a switcher, members of T or not; the operator and keys are not users.
  rows.push_back({"GET", "/v1/me",
                  {k403, k200, k200, k200, k200, k200, k200, k200, k200, k403, k401, k401},
                  [](World&, Who) { return Call{}; }});

  // --- organizations ------------------------------------------------------------------------------
  rows.push_back({"GET", "/v1/orgs/{}",
                  {k200, k200, k200, k200, k200, k200, k404, k404, k404, k403, k401, k401}, T});
  rows.push_back({"PATCH", "/v1/orgs/{}",
                  {k200, k200, k403, k403, k403, k200, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) { return Call{{w.T}, {{"name", "T"}}}; }});
  rows.push_back({"POST", "/v1/orgs/{}/sub-orgs",
                  {k201, k201, k403, k403, k403, k201, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) { return Call{{w.T}, {{"name", w.unique("Spare")}}}; }});
  rows.push_back({"GET", "/v1/orgs/{}/sub-orgs",
                  {k200, k200, k200, k200, k200, k200, k404, k404, k404, k403, k401, k401}, T});

  // --- members and invitations (net/handlers_members.cpp) -------------------------------------------
  rows.push_back({"GET", "/v1/orgs/{}/members",
                  {k200, k200, k200, k200, k200, k200, k404, k404, k404, k403, k401, k401}, T});
  // A manager may change a non-admin's role.
  rows.push_back({"PATCH", "/v1/orgs/{}/members/{}",
                  {k200, k200, k200, k403, k403, k200, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) { return Call{{w.T, w.throwaway_member_of_t()}, {{"role", "developer"}}}; }});
  rows.push_back({"DELETE", "/v1/orgs/{}/members/{}",
                  {k204, k204, k204, k403, k403, k204, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) { return Call{{w.T, w.throwaway_member_of_t()}}; }});
  rows.push_back({"POST", "/v1/orgs/{}/invitations",
                  {k201, k201, k201, k403, k403, k201, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) { return Call{{w.T}, {{"email", w.unique_email("invitee")}, {"role", "agent"}}}; }});
  rows.push_back({"DELETE", "/v1/orgs/{}/invitations/{}",
                  {k204, k204, k204, k403, k403, k204, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) {
                    return Call{{w.T, w.invite(*w.op_client, w.T, w.unique_email("revoked"), "agent").id}};
                  }});
  // Only an admin of an ancestor may give themselves a direct role; a member may not promote
  // themselves, and the operator and keys are not users.
  rows.push_back({"PUT", "/v1/orgs/{}/my-role",
                  {k403, k403, k403, k403, k403, k200, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) { return Call{{w.T}, {{"role", "agent"}}}; },
                  true});
  // A member leaves. The ancestor admin has no membership in T to leave: 404 (T itself stays visible
  // to them everywhere else).
  rows.push_back({"DELETE", "/v1/orgs/{}/my-role",
                  {k403, k204, k204, k204, k204, k404, k404, k404, k404, k403, k401, k401}, T, true});

  // --- API keys (net/handlers_keys.cpp) -----------------------------------------------------------
  rows.push_back({"POST", "/v1/orgs/{}/api-keys",
                  {k201, k201, k403, k201, k403, k201, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) { return Call{{w.T}, {{"name", w.unique("key")}}}; }});
  rows.push_back({"GET", "/v1/orgs/{}/api-keys",
                  {k200, k200, k403, k200, k403, k200, k404, k404, k404, k403, k401, k401}, T});
  rows.push_back({"DELETE", "/v1/orgs/{}/api-keys/{}",
                  {k204, k204, k403, k204, k403, k204, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) { return Call{{w.T, w.throwaway_key_of_t()}}; }});

  // --- customization and settings (net/handlers_settings.cpp) --------------------------------------
  rows.push_back({"GET", "/v1/orgs/{}/customization",
                  {k200, k200, k200, k200, k200, k200, k404, k404, k404, k403, k401, k401}, T});
  rows.push_back({"PUT", "/v1/orgs/{}/customization",
                  {k200, k200, k403, k403, k403, k200, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) {
                    return Call{{w.T},
                                {{"name", "T"},
                                 {"logo_url", "https://t.example/logo.png"},
                                 {"contact_email", "hello@t.example"},
                                 {"address", "1 Main St"},
                                 {"terms_of_service_url", "https://t.example/terms"},
                                 {"privacy_policy_url", "https://t.example/privacy"}}};
                  }});
  rows.push_back({"PUT", "/v1/orgs/{}/settings/show-credits-balance",
                  {k200, k200, k403, k403, k403, k200, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) { return Call{{w.T}, {{"enabled", false}}}; }});
  rows.push_back({"GET", "/v1/orgs/{}/indicator",
                  {k200, k200, k200, k200, k200, k200, k404, k404, k404, k403, k401, k401}, T});

  // --- billing (net/handlers_billing.cpp) ---------------------------------------------------------
  rows.push_back({"GET", "/v1/orgs/{}/billing",
                  {k200, k200, k200, k403, k403, k200, k404, k404, k404, k403, k401, k401}, T});
  // Governing a sub-org's billing belongs to the admins above it, not to its own admin.
  rows.push_back({"PUT", "/v1/orgs/{}/billing/consolidated",
                  {k200, k403, k403, k403, k403, k200, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) { return Call{{w.T}, {{"enabled", true}}}; }});
  rows.push_back({"PUT", "/v1/orgs/{}/billing/spending-limit",
                  {k200, k403, k403, k403, k403, k200, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) { return Call{{w.T}, {{"monthly_limit_micros", nullptr}}}; }});
  rows.push_back({"PUT", "/v1/orgs/{}/billing/subscription",
                  {k200, k200, k403, k403, k403, k200, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) { return Call{{w.T}, {{"plan", "business"}}}; }});
  // Each cell first gets T a subscription to cancel.
  rows.push_back({"DELETE", "/v1/orgs/{}/billing/subscription",
                  {k200, k200, k403, k403, k403, k200, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) {
                    auto r = w.op_client->put("/v1/orgs/" + w.T + "/billing/subscription", {{"plan", "business"}});
                    EXPECT_EQ(r.status, 200u) << r.body;
                    return Call{{w.T}};
                  }});
  rows.push_back({"PUT", "/v1/orgs/{}/billing/payment-method",
                  {k200, k200, k403, k403, k403, k200, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) { return Call{{w.T}, World::card_body()}; }});
  rows.push_back({"PUT", "/v1/orgs/{}/billing/auto-recharge",
                  {k200, k200, k403, k403, k403, k200, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) {
                    return Call{{w.T}, {{"enabled", false}, {"threshold_micros", 1'000'000}, {"amount_micros", 5'000'000}}};
                  }});
  rows.push_back({"POST", "/v1/orgs/{}/billing/top-ups",
                  {k201, k201, k403, k403, k403, k201, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) {
                    return Call{{w.T}, {{"amount_micros", 1'000'000}}, {{"Idempotency-Key", w.unique("top-up")}}};
                  }});
  rows.push_back({"POST", "/v1/orgs/{}/billing/grants",
                  {k201, k403, k403, k403, k403, k403, k403, k403, k403, k403, k401, k401},
                  [](World& w, Who) { return Call{{w.T}, {{"amount_micros", 1'000'000}, {"reason", "matrix"}}}; },
                  false, true});
  // To C, T's self-paying child.
  rows.push_back({"POST", "/v1/orgs/{}/billing/transfers",
                  {k201, k201, k403, k403, k403, k201, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) {
                    return Call{{w.T}, {{"to_org_id", w.C}, {"amount_micros", 1000}}, {{"Idempotency-Key", w.unique("transfer")}}};
                  }});
  rows.push_back({"GET", "/v1/orgs/{}/billing/payments",
                  {k200, k200, k200, k403, k403, k200, k404, k404, k404, k403, k401, k401}, T});

  // --- usage (net/handlers_usage.cpp) -------------------------------------------------------------
  // The one thing an API key may do.
  rows.push_back({"POST", "/v1/orgs/{}/usage",
                  {k200, k200, k403, k403, k403, k200, k404, k404, k404, k200, k401, k401},
                  [](World& w, Who) { return Call{{w.T}, usage_event(w)}; }});
  // Batches come from keys and the operator only; users get 403 whatever the orgs in the batch.
  rows.push_back({"POST", "/v1/usage:batch",
                  {k200, k403, k403, k403, k403, k403, k403, k403, k403, k200, k401, k401},
                  [](World& w, Who) {
                    json::value e = usage_event(w);
                    e.as_object()["org_id"] = w.T;
                    return Call{{}, {{"events", json::array{e}}}};
                  },
                  false, false,
                  [](const HttpResult& r) {
                    const auto v = r.json();
                    ASSERT_TRUE(v.is_object() && v.as_object().contains("results") && v.at("results").is_array() &&
                                v.at("results").as_array().size() == 1)
                        << r.body;
                    EXPECT_EQ(json_str(v.at("results").as_array()[0], {"status"}), "accepted") << r.body;
                  }});

  // --- usage reports (net/handlers_usage_reports.cpp) -------------------------------------------------
  rows.push_back({"GET", "/v1/orgs/{}/usage",
                  {k200, k200, k200, k200, k403, k200, k404, k404, k404, k403, k401, k401}, T});
  rows.push_back({"GET", "/v1/orgs/{}/usage/sub-orgs",
                  {k200, k200, k200, k403, k403, k200, k404, k404, k404, k403, k401, k401}, T});

  // --- alerts and webhooks (net/handlers_alerts.cpp) ------------------------------------------------
  // Webhooks point at a documentation address (TEST-NET-3) for an event that never fires here, so the
  // dispatcher never tries them.
  const auto webhook_body = [] {
    return json::value{{"url", "http://203.0.113.10/hook"}, {"events", json::array{"org.detached"}}};
  };
  // A fresh webhook on T for one cell; T's earlier ones go first (an org holds at most 20).
  const auto new_webhook = [webhook_body](World& w) {
    const auto list = w.op_client->get("/v1/orgs/" + w.T + "/webhooks").json();
    for (const auto& hook : list.at("data").as_array()) {
      EXPECT_EQ(w.op_client->del("/v1/orgs/" + w.T + "/webhooks/" + json_str(hook, {"id"})).status, 204u);
    }
    auto r = w.op_client->post("/v1/orgs/" + w.T + "/webhooks", webhook_body());
    EXPECT_EQ(r.status, 201u) << r.body;
    return json_str(r.json(), {"id"});
  };
  rows.push_back({"GET", "/v1/orgs/{}/alerts",
                  {k200, k200, k200, k403, k403, k200, k404, k404, k404, k403, k401, k401}, T});
  rows.push_back({"PUT", "/v1/orgs/{}/alerts",
                  {k200, k200, k403, k403, k403, k200, k404, k404, k404, k403, k401, k401},
                  [](World& w, Who) {
                    return Call{{w.T}, {{"spend_percent_thresholds", json::array{50, 80, 100}}, {"low_balance_micros", nullptr}}};
                  }});
  rows.push_back({"POST", "/v1/orgs/{}/webhooks",
                  {k201, k201, k403, k403, k403, k201, k404, k404, k404, k403, k401, k401},
                  [webhook_body](World& w, Who) { return Call{{w.T}, webhook_body()}; }});
  rows.push_back({"GET", "/v1/orgs/{}/webhooks",
                  {k200, k200, k403, k403, k403, k200, k404, k404, k404, k403, k401, k401}, T});
  rows.push_back({"GET", "/v1/orgs/{}/webhooks/{}",
                  {k200, k200, k403, k403, k403, k200, k404, k404, k404, k403, k401, k401},
                  [new_webhook](World& w, Who) { return Call{{w.T, new_webhook(w)}}; }});
  rows.push_back({"DELETE", "/v1/orgs/{}/webhooks/{}",
                  {k204, k204, k403, k403, k403, k204, k404, k404, k404, k403, k401, k401},
                  [new_webhook](World& w, Who) { return Call{{w.T, new_webhook(w)}}; }});
  rows.push_back({"GET", "/v1/orgs/{}/webhooks/{}/deliveries",
                  {k200, k200, k403, k403, k403, k200, k404, k404, k404, k403, k401, k401},
                  [new_webhook](World& w, Who) { return Call{{w.T, new_webhook(w)}}; }});

  // --- operations (net/handlers_ops.cpp) ----------------------------------------------------------
  // The stream speaks WebSocket (tests/e2e/stream_test.cpp); a plain GET is authenticated, then told so.
  constexpr Expect k400{400, "invalid_request"};
  rows.push_back({"GET", "/v1/stream",
                  {k400, k400, k400, k400, k400, k400, k400, k400, k400, k400, k401, k401},
                  [](World&, Who) { return Call{}; }});
  // The server runs with --clock manual, so the endpoint exists; only the operator may move it. Every
  // cell asks for the same time (an hour ahead), so the one permitted move is the only one.
  rows.push_back({"POST", "/v1/admin/clock",
                  {k200, k403, k403, k403, k403, k403, k403, k403, k403, k403, k401, k401},
                  [](World&, Who) {
                    return Call{{}, {{"now", rfc3339(std::chrono::system_clock::now() + std::chrono::hours(1))}}};
                  },
                  false, true});
  // Public: a token, even a bad one, is not looked at.
  for (const char* path : {"/healthz", "/readyz", "/metrics", "/v1/openapi.yaml"}) {
    rows.push_back({"GET", path, {k200, k200, k200, k200, k200, k200, k200, k200, k200, k200, k200, k200},
                    [](World&, Who) { return Call{}; }});
  }
  // Anyone holding the link: a user token joins that user, no token creates the invited user; the
  // operator and keys are not users. Each cell accepts its own invitation, to the Sink root, so nobody's
  // access to T changes. This row comes last: its no-token cell is the only call in the matrix that
  // creates a user through an invitation, and the check after each row (the server still creates
  // users) then tells whether that left the server able to work.
  rows.push_back({"POST", "/v1/invitations/{}/accept",
                  {k403, k200, k200, k200, k200, k200, k200, k200, k200, k403, k200, k401},
                  [](World& w, Who) {
                    return Call{{w.invite(*w.op_client, w.sink, w.unique_email("accepter"), "agent").token},
                                {{"name", "Accepter"}}};
                  }});
  return rows;
}

std::string target_of(const std::string& route, const std::vector<std::string>& params) {
  std::string out;
  std::size_t used = 0, from = 0;
  for (;;) {
    const auto at = route.find("{}", from);
    if (at == std::string::npos) break;
    out += route.substr(from, at - from);
    EXPECT_LT(used, params.size()) << "too few parameters for " << route;
    out += used < params.size() ? params[used] : "missing";
    ++used;
    from = at + 2;
  }
  out += route.substr(from);
  EXPECT_EQ(used, params.size()) << "parameters left over for " << route;
  return out;
}

// ------------------------------------------------------------------------------------------------
// The routes the server registers, read from its source
// ------------------------------------------------------------------------------------------------

std::string source_dir() {
  if (const char* env = std::getenv("CANOPY_SOURCE_DIR")) return env;
  return CANOPY_SOURCE_DIR;
}

std::string http_method(const std::string& enumerator) {
  static const std::map<std::string, std::string> names{
      {"get", "GET"}, {"post", "POST"}, {"put", "PUT"}, {"patch", "PATCH"}, {"del", "DELETE"}};
  const auto it = names.find(enumerator);
  return it == names.end() ? "Method::" + enumerator : it->second;
}

// Every (method, route) registered by a `routes.push_back({Method::x, "…", …})` in net/.
std::set<std::pair<std::string, std::string>> server_routes() {
  namespace fs = std::filesystem;
  const fs::path net = fs::path(source_dir()) / "net";
  std::set<std::pair<std::string, std::string>> routes;
  if (!fs::is_directory(net)) {
    ADD_FAILURE() << "no server sources at " << net << " (set CANOPY_SOURCE_DIR)";
    return routes;
  }
  const std::regex any_registration(R"(routes_?\s*\.\s*(push_back|emplace_back)\s*\()");
  const std::regex registration(
      R"(routes_?\s*\.\s*(?:push_back|emplace_back)\s*\(\s*\{?\s*Method::(\w+)\s*,\s*"([^"]*)\")");
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(net)) {
    const auto ext = entry.path().extension();
    if (ext != ".cpp" && ext != ".hpp") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    const std::string source = text.str();
    ++files;
    const auto registrations = static_cast<std::size_t>(
        std::distance(std::sregex_iterator(source.begin(), source.end(), any_registration), std::sregex_iterator()));
    std::size_t read = 0;
    for (auto it = std::sregex_iterator(source.begin(), source.end(), registration); it != std::sregex_iterator(); ++it) {
      const auto [_, fresh] = routes.emplace(http_method((*it)[1]), (*it)[2]);
      EXPECT_TRUE(fresh) << "registered twice: " << (*it)[1] << " " << (*it)[2];
      ++read;
    }
    // A registration written some other way would escape the check: make it fail instead.
    EXPECT_EQ(read, registrations) << entry.path() << " registers routes this test cannot read";
  }
  EXPECT_GT(files, 0u) << "no sources in " << net;
  return routes;
}

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

TEST(AccessMatrix, EveryServerRouteHasARow) {
  std::set<std::pair<std::string, std::string>> table;
  for (const auto& row : matrix()) {
    EXPECT_TRUE(table.emplace(row.method, row.route).second) << "two rows for " << row.method << " " << row.route;
  }
  const auto served = server_routes();
  for (const auto& [method, route] : served) {
    EXPECT_TRUE(table.count({method, route}))
        << "the server has " << method << " " << route << " but the access matrix has no row for it";
  }
  for (const auto& [method, route] : table) {
    EXPECT_TRUE(served.count({method, route}))
        << "the access matrix has a row for " << method << " " << route << ", which the server does not register";
  }
}

// The table itself keeps the contract's standing rules, so a new row cannot quietly break them.
TEST(AccessMatrix, TheTableKeepsTheStandingRules) {
  for (const auto& row : matrix()) {
    SCOPED_TRACE(row.method + " " + row.route);
    const bool public_route = row.expect[at(Who::forged)].status < 400;  // /healthz and the like
    if (!public_route) {
      // No token, or one nobody was given: 401 (the invitation link is open to anyone, token or not).
      EXPECT_EQ(row.expect[at(Who::forged)].status, 401u);
      if (row.route != "/v1/invitations/{}/accept") {
        EXPECT_EQ(row.expect[at(Who::no_token)].status, 401u);
      }
    }
    if (row.route.starts_with("/v1/orgs/{}") && !row.operator_only) {
      // Non-members learn nothing: 404, never 403.
      for (const Who w : {Who::sibling_admin, Who::child_admin, Who::other_tenant}) {
        EXPECT_EQ(row.expect[at(w)].status, 404u) << who_names[at(w)];
      }
    }
    if (row.operator_only) {
      for (std::size_t i = 1; i < who_count; ++i) {
        EXPECT_TRUE(row.expect[i].status == 403u || row.expect[i].status == 401u) << who_names[i];
      }
    }
  }
}

TEST(AccessMatrix, EveryRouteForEveryCaller) {
  World w;
  ASSERT_NO_FATAL_FAILURE(w.build());
  const auto started = std::chrono::steady_clock::now();
  const auto rows = matrix();
  std::size_t cells = 0;
  for (const auto& row : rows) {
    const std::string route_name = row.method + " " + row.route;
    for (const Who who : everyone) {
      const std::string cell = route_name + " as " + who_names[at(who)];
      SCOPED_TRACE(cell);
      const Call call = row.call(w, who);
      const std::string target = target_of(row.route, call.params);
      w.caller->set_token(w.token(who));
      const auto r = w.caller->request(row.method, target, call.body.is_null() ? "" : json::serialize(call.body),
                                       call.headers);
      const Expect& e = row.expect[at(who)];
      EXPECT_EQ(r.status, e.status) << cell << " (" << row.method << " " << target << "): " << r.body;
      if (*e.code) {
        EXPECT_EQ(r.error_code(), e.code) << cell << ": " << r.body;
      } else if (r.status == e.status && row.check_success) {
        row.check_success(r);
      }
      ++cells;
    }
    // Every row leaves T's membership as built: rows that change it on purpose are put back, any other
    // change is a failure of that row.
    const std::string problems = w.membership_problems();
    if (row.changes_memberships) {
      w.restore_memberships();
      EXPECT_EQ(w.membership_problems(), "") << "could not restore T's members after " << route_name;
    } else {
      EXPECT_EQ(problems, "") << route_name << " changed T's members";
      if (!problems.empty()) w.restore_memberships();
    }
    // ...and the server can still create users, which later rows' throwaway members need (and which
    // an invitation that creates a user must not break).
    auto alive = w.op_client->post("/v1/users", {{"email", w.unique_email("alive")}, {"name", "Still There"}});
    EXPECT_EQ(alive.status, 201u) << "after " << route_name << ", POST /v1/users as the operator: " << alive.body;
  }
  EXPECT_EQ(cells, rows.size() * who_count) << "a cell was skipped";
  std::printf("access matrix: %zu routes x %zu callers = %zu cells in %lld ms\n", rows.size(), who_count, cells,
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - started)
                                         .count()));
}

}  // namespace
}  // namespace canopy::test
