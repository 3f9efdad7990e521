// Goal: organizations end to end, as a client sees them (CONTRACT.md "Users and bootstrap",
// "Organizations", "Roles and access"; docs/openapi.yaml).
//
// The operator creates users and root organizations; a root's owner becomes its admin. GET /v1/me is
// the switcher: every org a user reaches, nested to any depth. Sub-organizations need a business or
// enterprise root and stop at the configured depth. GET/PATCH and the sub-org list have the documented
// shapes and paging. And the negative space: nobody outside a tenant learns that its orgs exist (404,
// never 403, indistinguishable from an id that names nothing), while an admin of a parent reaches every
// descendant and the operator reaches everything.
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <set>

#include "tests/e2e/harness.hpp"

namespace canopy::test {
namespace {

namespace json = boost::json;

const std::regex org_id_pattern("^org_[0-9a-hjkmnp-tv-z]{13}$");
const std::regex user_id_pattern("^usr_[0-9a-hjkmnp-tv-z]{13}$");
const std::regex user_token_pattern("^cu_[A-Za-z0-9_-]+$");

std::set<std::string> keys_of(const json::value& v) {
  std::set<std::string> keys;
  if (!v.is_object()) return keys;
  for (const auto& [k, _] : v.as_object()) keys.insert(std::string(k));
  return keys;
}

bool is_string(const json::value& v, const char* key) {
  return v.is_object() && v.as_object().contains(key) && v.at(key).is_string();
}

// A user who owns a root organization.
struct Tenant {
  CreatedUser owner;
  std::string root;
};

Tenant make_tenant(Client& op, const std::string& email, const std::string& plan = "business",
                   const std::string& name = "Root") {
  Tenant t;
  t.owner = create_user(op, email, "Owner of " + name);
  t.root = create_root(op, t.owner.id, plan, name);
  return t;
}

// Every org id anywhere in a switcher tree.
void collect_ids(const json::value& orgs, std::set<std::string>& out) {
  if (!orgs.is_array()) return;
  for (const auto& o : orgs.as_array()) {
    if (is_string(o, "id")) out.insert(std::string(o.at("id").as_string()));
    if (o.is_object() && o.as_object().contains("sub_organizations")) collect_ids(o.at("sub_organizations"), out);
  }
}

// What one switcher entry should say.
struct Node {
  std::string id;
  std::string name;
  std::string plan;
  std::string role;
  std::vector<Node> children;
};

// Compares a switcher entry with the expected node; siblings in any order (the contract fixes none).
void expect_node(const json::value& actual, const Node& expected, const std::string& where) {
  SCOPED_TRACE(where + " " + expected.name);
  ASSERT_TRUE(actual.is_object()) << json::serialize(actual);
  EXPECT_EQ(keys_of(actual), (std::set<std::string>{"id", "name", "plan", "role", "sub_organizations"}));
  EXPECT_EQ(json_str(actual, {"id"}), expected.id);
  EXPECT_EQ(json_str(actual, {"name"}), expected.name);
  EXPECT_EQ(json_str(actual, {"plan"}), expected.plan);
  EXPECT_EQ(json_str(actual, {"role"}), expected.role);
  ASSERT_TRUE(actual.at("sub_organizations").is_array());
  const auto& subs = actual.at("sub_organizations").as_array();
  ASSERT_EQ(subs.size(), expected.children.size()) << json::serialize(actual);
  for (const auto& child : expected.children) {
    const auto it = std::find_if(subs.begin(), subs.end(), [&](const json::value& s) {
      return is_string(s, "id") && s.at("id").as_string() == child.id;
    });
    ASSERT_NE(it, subs.end()) << child.name << " missing under " << expected.name;
    expect_node(*it, child, where + " > " + expected.name);
  }
}

std::int64_t metric(Client& c, const std::string& line_prefix) {
  const auto body = c.get("/metrics").body;
  const auto at = body.find("\n" + line_prefix + " ");
  if (at == std::string::npos) {
    ADD_FAILURE() << "no metric " << line_prefix;
    return -1;
  }
  return std::stoll(body.substr(at + line_prefix.size() + 2));
}

// ------------------------------------------------------------------------------------------------
// Users
// ------------------------------------------------------------------------------------------------

TEST(Users, CreateAnswers201WithIdEmailNameAndToken) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto r = op.post("/v1/users", {{"email", "dana@acme-agency.com"}, {"name", "Dana Ortiz"}});
  ASSERT_EQ(r.status, 201u) << r.body;
  const auto body = r.json();
  EXPECT_EQ(keys_of(body), (std::set<std::string>{"id", "email", "name", "token"}));
  EXPECT_TRUE(std::regex_match(json_str(body, {"id"}), user_id_pattern)) << r.body;
  EXPECT_EQ(json_str(body, {"email"}), "dana@acme-agency.com");
  EXPECT_EQ(json_str(body, {"name"}), "Dana Ortiz");
  EXPECT_TRUE(std::regex_match(json_str(body, {"token"}), user_token_pattern)) << r.body;
}

TEST(Users, TheReturnedTokenSignsInAsThatUser) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto dana = create_user(op, "dana@example.com", "Dana");
  const auto eli = create_user(op, "eli@example.com", "Eli");
  EXPECT_NE(dana.token, eli.token);
  Client as_dana(server.port(), dana.token);
  const auto me = as_dana.get("/v1/me");
  ASSERT_EQ(me.status, 200u) << me.body;
  EXPECT_EQ(json_str(me.json(), {"id"}), dana.id);
  EXPECT_EQ(json_str(me.json(), {"email"}), "dana@example.com");
  EXPECT_EQ(json_str(me.json(), {"name"}), "Dana");
  EXPECT_EQ(me.json().at("organizations"), json::value(json::array{}));
}

TEST(Users, EmailIsStoredLowerCased) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto r = op.post("/v1/users", {{"email", "Dana.Ortiz@Acme-Agency.COM"}, {"name", "Dana"}});
  ASSERT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(json_str(r.json(), {"email"}), "dana.ortiz@acme-agency.com");
}

TEST(Users, ASecondUserWithTheSameEmailIs409EmailTaken) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  create_user(op, "dana@example.com", "Dana");
  const auto r = op.post("/v1/users", {{"email", "dana@example.com"}, {"name", "Impostor"}});
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(r.error_code(), "email_taken");
  EXPECT_EQ(json_str(r.json(), {"error", "details", "field"}), "email");
}

TEST(Users, EmailsDifferingOnlyInCaseAreTheSameEmail) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  create_user(op, "dana@example.com", "Dana");
  for (const char* variant : {"DANA@EXAMPLE.COM", "Dana@Example.com", "dana@EXAMPLE.com"}) {
    SCOPED_TRACE(variant);
    const auto r = op.post("/v1/users", {{"email", variant}, {"name", "Impostor"}});
    EXPECT_EQ(r.status, 409u) << r.body;
    EXPECT_EQ(r.error_code(), "email_taken");
  }
}

TEST(Users, ARefusedDuplicateLeavesTheFirstUserUntouched) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto dana = create_user(op, "dana@example.com", "Dana");
  ASSERT_EQ(op.post("/v1/users", {{"email", "DANA@example.com"}, {"name", "Impostor"}}).status, 409u);
  Client as_dana(server.port(), dana.token);
  const auto me = as_dana.get("/v1/me");
  ASSERT_EQ(me.status, 200u) << me.body;
  EXPECT_EQ(json_str(me.json(), {"id"}), dana.id);
  EXPECT_EQ(json_str(me.json(), {"name"}), "Dana");
}

TEST(Users, InvalidEmailsAndNamesAre400NamingTheField) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  struct Case {
    std::string email;
    std::string name;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"", "Dana", "email"},
      {"no-at-sign", "Dana", "email"},
      {"two@@example.com", "Dana", "email"},
      {"@example.com", "Dana", "email"},
      {"dana@localhost", "Dana", "email"},
      {"dana smith@example.com", "Dana", "email"},
      {std::string(250, 'a') + "@example.com", "Dana", "email"},
      {"dana@example.com", "", "name"},
      {"dana@example.com", "   ", "name"},
      {"dana@example.com", std::string(201, 'n'), "name"},
      {"dana@example.com", std::string("Da\x01na"), "name"},
      {"dana@example.com", std::string("Da\nna"), "name"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("email '" + c.email + "' name '" + c.name + "'");
    const auto r = op.post("/v1/users", {{"email", c.email}, {"name", c.name}});
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request");
    EXPECT_EQ(json_str(r.json(), {"error", "details", "field"}), c.field);
  }
  // None of them was created: the address is still free.
  EXPECT_EQ(op.post("/v1/users", {{"email", "dana@example.com"}, {"name", "Dana"}}).status, 201u);
}

TEST(Users, NamesOfExactly200BytesAreAccepted) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  std::string name;
  for (int i = 0; i < 100; ++i) name += "\xc3\xa9";  // 100 x 'é' = 200 bytes
  const auto r = op.post("/v1/users", {{"email", "e@example.com"}, {"name", name}});
  ASSERT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(json_str(r.json(), {"name"}), name);
}

TEST(Users, OnlyTheOperatorCreatesUsersAndRoots) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  Client as_owner(server.port(), t.owner.token);
  const auto user = as_owner.post("/v1/users", {{"email", "friend@example.com"}, {"name", "Friend"}});
  EXPECT_EQ(user.status, 403u) << user.body;
  EXPECT_EQ(user.error_code(), "forbidden");
  const auto root =
      as_owner.post("/v1/orgs", {{"name", "Mine"}, {"plan", "enterprise"}, {"owner_user_id", t.owner.id}});
  EXPECT_EQ(root.status, 403u) << root.body;
  EXPECT_EQ(root.error_code(), "forbidden");
  // Neither was created: the email is free and the owner still has one root.
  EXPECT_EQ(op.post("/v1/users", {{"email", "friend@example.com"}, {"name", "Friend"}}).status, 201u);
  EXPECT_EQ(as_owner.get("/v1/me").json().at("organizations").as_array().size(), 1u);
}

TEST(Users, OperatorOnlyBillingAndBatchEndpointsRefuseUserTokens) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  Client as_owner(server.port(), t.owner.token);
  // Even the admin of the org may not grant credits to it.
  const auto g =
      as_owner.post("/v1/orgs/" + t.root + "/billing/grants", {{"amount_micros", 1'000'000}, {"reason", "me"}});
  EXPECT_EQ(g.status, 403u) << g.body;
  EXPECT_EQ(g.error_code(), "forbidden");
  const auto b = as_owner.post("/v1/usage:batch", {{"events", json::array{}}});
  EXPECT_EQ(b.status, 403u) << b.body;
  EXPECT_EQ(b.error_code(), "forbidden");
  EXPECT_EQ(json_int(op.get("/v1/orgs/" + t.root + "/billing").json(), {"available_balance_micros"}), 5'000'000);
}

// ------------------------------------------------------------------------------------------------
// Root organizations
// ------------------------------------------------------------------------------------------------

TEST(Roots, CreateAnswers201WithTheNewRoot) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto owner = create_user(op, "owner@example.com");
  const auto r = op.post("/v1/orgs", {{"name", "Acme Agency"}, {"plan", "business"}, {"owner_user_id", owner.id}});
  ASSERT_EQ(r.status, 201u) << r.body;
  const auto body = r.json();
  EXPECT_TRUE(std::regex_match(json_str(body, {"id"}), org_id_pattern)) << r.body;
  EXPECT_EQ(json_str(body, {"name"}), "Acme Agency");
  EXPECT_TRUE(body.at("parent_id").is_null());
  EXPECT_EQ(json_str(body, {"plan"}), "business");
  EXPECT_EQ(json_int(body, {"member_count"}), 1);
  // What POST answered is what GET answers.
  EXPECT_EQ(op.get("/v1/orgs/" + json_str(body, {"id"})).json(), body);
}

TEST(Roots, TheOwnerBecomesAdmin) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  Client as_owner(server.port(), t.owner.token);
  const auto me = as_owner.get("/v1/me").json();
  ASSERT_EQ(me.at("organizations").as_array().size(), 1u) << json::serialize(me);
  EXPECT_EQ(json_str(me.at("organizations").at(0), {"id"}), t.root);
  EXPECT_EQ(json_str(me.at("organizations").at(0), {"role"}), "admin");
  // And acts as one: renames the root, reads its billing, creates a sub-org.
  EXPECT_EQ(as_owner.patch("/v1/orgs/" + t.root, {{"name", "Renamed"}}).status, 200u);
  EXPECT_EQ(as_owner.get("/v1/orgs/" + t.root + "/billing").status, 200u);
  EXPECT_EQ(as_owner.post("/v1/orgs/" + t.root + "/sub-orgs", {{"name", "Child"}}).status, 201u);
}

TEST(Roots, EveryPlanCanBeChosen) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto owner = create_user(op, "owner@example.com");
  for (const char* plan : {"free", "pay_as_you_go", "business", "enterprise"}) {
    SCOPED_TRACE(plan);
    const auto r =
        op.post("/v1/orgs", {{"name", std::string("On ") + plan}, {"plan", plan}, {"owner_user_id", owner.id}});
    ASSERT_EQ(r.status, 201u) << r.body;
    EXPECT_EQ(json_str(r.json(), {"plan"}), plan);
    const auto billing = op.get("/v1/orgs/" + json_str(r.json(), {"id"}) + "/billing").json();
    EXPECT_EQ(json_str(billing, {"subscription", "plan"}), plan);
  }
}

TEST(Roots, UnknownPlansAre400AndCreateNothing) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto owner = create_user(op, "owner@example.com");
  for (const char* plan : {"gold", "Business", "FREE", "", "pay-as-you-go", "business "}) {
    SCOPED_TRACE(std::string("plan '") + plan + "'");
    const auto r = op.post("/v1/orgs", {{"name", "Root"}, {"plan", plan}, {"owner_user_id", owner.id}});
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request");
    EXPECT_EQ(json_str(r.json(), {"error", "details", "field"}), "plan");
  }
  Client as_owner(server.port(), owner.token);
  EXPECT_EQ(as_owner.get("/v1/me").json().at("organizations").as_array().size(), 0u);
  EXPECT_EQ(metric(op, "canopy_organizations"), 0);
}

TEST(Roots, AnOwnerWhoIsNotAUserIs400) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  for (const std::string& owner : {std::string("usr_0000000000001"), std::string("usr_0000000000000"),
                                   std::string("nobody"), t.root, std::string("")}) {
    SCOPED_TRACE("owner_user_id '" + owner + "'");
    const auto r = op.post("/v1/orgs", {{"name", "Root"}, {"plan", "business"}, {"owner_user_id", owner}});
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request");
    EXPECT_EQ(json_str(r.json(), {"error", "details", "field"}), "owner_user_id");
  }
  EXPECT_EQ(metric(op, "canopy_organizations"), 1);
}

// ------------------------------------------------------------------------------------------------
// The switcher: GET /v1/me
// ------------------------------------------------------------------------------------------------

TEST(Switcher, ShowsTheRootWithSubOrgsNestedToAnyDepth) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com", "business", "Agency");
  Client admin(server.port(), t.owner.token);
  const auto a = create_sub_org(admin, t.root, "A");
  const auto a1 = create_sub_org(admin, a, "A1");
  const auto a1x = create_sub_org(admin, a1, "A1x");
  const auto a1xy = create_sub_org(admin, a1x, "A1xy");
  const auto a2 = create_sub_org(admin, a, "A2");
  const auto b = create_sub_org(admin, t.root, "B");
  // Every node is reached as an admin of the root: role admin, and the root's plan, all the way down.
  const Node a1xy_node{a1xy, "A1xy", "business", "admin", {}};
  const Node a1x_node{a1x, "A1x", "business", "admin", {a1xy_node}};
  const Node a1_node{a1, "A1", "business", "admin", {a1x_node}};
  const Node a2_node{a2, "A2", "business", "admin", {}};
  const Node a_node{a, "A", "business", "admin", {a1_node, a2_node}};
  const Node b_node{b, "B", "business", "admin", {}};
  const Node expected{t.root, "Agency", "business", "admin", {a_node, b_node}};
  const auto me = admin.get("/v1/me");
  ASSERT_EQ(me.status, 200u) << me.body;
  EXPECT_EQ(keys_of(me.json()), (std::set<std::string>{"id", "email", "name", "organizations"}));
  ASSERT_EQ(me.json().at("organizations").as_array().size(), 1u) << me.body;
  expect_node(me.json().at("organizations").at(0), expected, "organizations");
}

TEST(Switcher, ListsEveryRootTheUserOwnsWithItsPlan) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto owner = create_user(op, "owner@example.com");
  const auto free_root = create_root(op, owner.id, "free", "Side project");
  const auto big_root = create_root(op, owner.id, "enterprise", "Day job");
  Client as_owner(server.port(), owner.token);
  const auto orgs = as_owner.get("/v1/me").json().at("organizations");
  ASSERT_EQ(orgs.as_array().size(), 2u) << json::serialize(orgs);
  for (const auto& org : orgs.as_array()) {
    const auto id = json_str(org, {"id"});
    if (id == free_root) {
      expect_node(org, {free_root, "Side project", "free", "admin", {}}, "organizations");
    } else {
      expect_node(org, {big_root, "Day job", "enterprise", "admin", {}}, "organizations");
    }
  }
}

TEST(Switcher, ShowsNothingOfOtherTenants) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto a = make_tenant(op, "a@example.com", "business", "A");
  const auto b = make_tenant(op, "b@example.com", "business", "B");
  Client as_a(server.port(), a.owner.token);
  Client as_b(server.port(), b.owner.token);
  create_sub_org(as_a, a.root, "A child");
  const auto b_child = create_sub_org(as_b, b.root, "B child");
  std::set<std::string> seen_by_a;
  collect_ids(as_a.get("/v1/me").json().at("organizations"), seen_by_a);
  EXPECT_EQ(seen_by_a.count(b.root), 0u);
  EXPECT_EQ(seen_by_a.count(b_child), 0u);
  EXPECT_EQ(seen_by_a.size(), 2u);
  const auto loner = create_user(op, "loner@example.com");
  Client as_loner(server.port(), loner.token);
  EXPECT_EQ(as_loner.get("/v1/me").json().at("organizations"), json::value(json::array{}));
}

TEST(Switcher, IsForUserTokensOnly) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto r = op.get("/v1/me");
  EXPECT_EQ(r.status, 403u) << r.body;
  EXPECT_EQ(r.error_code(), "forbidden");
}

// ------------------------------------------------------------------------------------------------
// Creating sub-organizations
// ------------------------------------------------------------------------------------------------

TEST(SubOrgs, CreateAnswers201WithAConsolidatedChildOfTheParent) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com", "enterprise");
  Client admin(server.port(), t.owner.token);
  const auto r = admin.post("/v1/orgs/" + t.root + "/sub-orgs", {{"name", "Bluebird Bakery"}});
  ASSERT_EQ(r.status, 201u) << r.body;
  const auto body = r.json();
  EXPECT_TRUE(std::regex_match(json_str(body, {"id"}), org_id_pattern)) << r.body;
  EXPECT_EQ(json_str(body, {"name"}), "Bluebird Bakery");
  EXPECT_EQ(json_str(body, {"parent_id"}), t.root);
  EXPECT_EQ(json_str(body, {"plan"}), "enterprise");  // the payer's
  EXPECT_EQ(json_int(body, {"member_count"}), 0);     // the parent's admins manage it from above
  EXPECT_EQ(body.at("billing").at("consolidated"), json::value(true));
  EXPECT_EQ(json_str(body, {"billing", "payer_org_id"}), t.root);
}

TEST(SubOrgs, TheOperatorMayCreateThemToo) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  const auto child = create_sub_org(op, t.root, "Made by the operator");
  EXPECT_EQ(json_str(op.get("/v1/orgs/" + child).json(), {"parent_id"}), t.root);
}

TEST(SubOrgs, FreeAndPayAsYouGoRootsGet403PlanRequired) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  for (const char* plan : {"free", "pay_as_you_go"}) {
    SCOPED_TRACE(plan);
    const auto t = make_tenant(op, std::string(plan) + "@example.com", plan);
    Client admin(server.port(), t.owner.token);
    const auto r = admin.post("/v1/orgs/" + t.root + "/sub-orgs", {{"name", "Child"}});
    EXPECT_EQ(r.status, 403u) << r.body;
    EXPECT_EQ(r.error_code(), "plan_required");
    // Not even the operator gets around the plan.
    EXPECT_EQ(op.post("/v1/orgs/" + t.root + "/sub-orgs", {{"name", "Child"}}).error_code(), "plan_required");
    const auto list = admin.get("/v1/orgs/" + t.root + "/sub-orgs").json();
    EXPECT_EQ(list.at("data"), json::value(json::array{}));
  }
}

TEST(SubOrgs, BusinessAndEnterpriseRootsMayHaveThem) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  for (const char* plan : {"business", "enterprise"}) {
    SCOPED_TRACE(plan);
    const auto t = make_tenant(op, std::string(plan) + "@example.com", plan);
    Client admin(server.port(), t.owner.token);
    EXPECT_EQ(admin.post("/v1/orgs/" + t.root + "/sub-orgs", {{"name", "Child"}}).status, 201u);
  }
}

TEST(SubOrgs, ThePlanThatCountsIsTheRootsCurrentOne) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com", "business");
  Client admin(server.port(), t.owner.token);
  const auto child = create_sub_org(admin, t.root, "Child");
  // Downgrading the root closes the door, also deeper down the tree.
  ASSERT_EQ(admin.put("/v1/orgs/" + t.root + "/billing/subscription", {{"plan", "pay_as_you_go"}}).status, 200u);
  const auto refused = admin.post("/v1/orgs/" + child + "/sub-orgs", {{"name", "Grandchild"}});
  EXPECT_EQ(refused.status, 403u) << refused.body;
  EXPECT_EQ(refused.error_code(), "plan_required");
  // Upgrading opens it again.
  ASSERT_EQ(admin.put("/v1/orgs/" + t.root + "/billing/subscription", {{"plan", "enterprise"}}).status, 200u);
  EXPECT_EQ(admin.post("/v1/orgs/" + child + "/sub-orgs", {{"name", "Grandchild"}}).status, 201u);
}

TEST(SubOrgs, NestingStopsAtFourLevelsBelowARootWith422DepthExceeded) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  Client admin(server.port(), t.owner.token);
  std::string parent = t.root;
  for (int level = 1; level <= 4; ++level) parent = create_sub_org(admin, parent, "Level " + std::to_string(level));
  const auto r = admin.post("/v1/orgs/" + parent + "/sub-orgs", {{"name", "Level 5"}});
  EXPECT_EQ(r.status, 422u) << r.body;
  EXPECT_EQ(r.error_code(), "depth_exceeded");
  EXPECT_EQ(op.post("/v1/orgs/" + parent + "/sub-orgs", {{"name", "Level 5"}}).error_code(), "depth_exceeded");
  EXPECT_EQ(admin.get("/v1/orgs/" + parent + "/sub-orgs").json().at("data"), json::value(json::array{}));
}

TEST(SubOrgs, TheDeepestLevelStillTakesSiblings) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  Client admin(server.port(), t.owner.token);
  std::string parent = t.root;
  for (int level = 1; level <= 3; ++level) parent = create_sub_org(admin, parent, "Level " + std::to_string(level));
  const auto first = create_sub_org(admin, parent, "Level 4 first");
  ASSERT_EQ(admin.post("/v1/orgs/" + first + "/sub-orgs", {{"name", "Level 5"}}).status, 422u);
  // The refusal is about depth, not a state the parent is left in.
  EXPECT_EQ(admin.post("/v1/orgs/" + parent + "/sub-orgs", {{"name", "Level 4 second"}}).status, 201u);
}

TEST(SubOrgs, MaxDepthIsConfigurable) {
  TempDir dir;
  CanopyProcess server(dir.str("data"), {"--max-depth", "2"});
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  Client admin(server.port(), t.owner.token);
  const auto level1 = create_sub_org(admin, t.root, "Level 1");
  const auto level2 = create_sub_org(admin, level1, "Level 2");
  const auto r = admin.post("/v1/orgs/" + level2 + "/sub-orgs", {{"name", "Level 3"}});
  EXPECT_EQ(r.status, 422u) << r.body;
  EXPECT_EQ(r.error_code(), "depth_exceeded");
  EXPECT_EQ(admin.get("/v1/orgs/" + level2 + "/sub-orgs").json().at("data"), json::value(json::array{}));
}

// ------------------------------------------------------------------------------------------------
// GET and PATCH /v1/orgs/{id}
// ------------------------------------------------------------------------------------------------

TEST(GetOrg, HasExactlyTheDocumentedFields) {
  TempDir dir;
  CanopyProcess server(dir.str("data"), {"--clock", "manual"});
  server.start();
  Client op(server.port());
  ASSERT_EQ(op.post("/v1/admin/clock", {{"now", "2040-02-03T04:05:06Z"}}).status, 200u);
  const auto t = make_tenant(op, "owner@example.com", "business", "Agency");
  Client admin(server.port(), t.owner.token);
  ASSERT_EQ(op.post("/v1/admin/clock", {{"now", "2040-02-04T00:00:00Z"}}).status, 200u);
  const auto child = create_sub_org(admin, t.root, "Client");
  const std::set<std::string> fields{"id",           "name",       "parent_id", "plan", "logo_url", "custom_domain",
                                     "member_count", "created_at", "billing"};

  const auto root = admin.get("/v1/orgs/" + t.root);
  ASSERT_EQ(root.status, 200u) << root.body;
  EXPECT_EQ(keys_of(root.json()), fields);
  EXPECT_EQ(json_str(root.json(), {"id"}), t.root);
  EXPECT_EQ(json_str(root.json(), {"name"}), "Agency");
  EXPECT_TRUE(root.json().at("parent_id").is_null());
  EXPECT_EQ(json_str(root.json(), {"plan"}), "business");
  EXPECT_TRUE(root.json().at("logo_url").is_null());
  EXPECT_TRUE(root.json().at("custom_domain").is_null());
  EXPECT_EQ(json_int(root.json(), {"member_count"}), 1);
  EXPECT_EQ(json_str(root.json(), {"created_at"}), "2040-02-03T04:05:06Z");
  EXPECT_TRUE(root.json().at("billing").is_object());

  const auto sub = admin.get("/v1/orgs/" + child);
  ASSERT_EQ(sub.status, 200u) << sub.body;
  EXPECT_EQ(keys_of(sub.json()), fields);
  EXPECT_EQ(json_str(sub.json(), {"parent_id"}), t.root);
  EXPECT_EQ(json_str(sub.json(), {"plan"}), "business");
  EXPECT_EQ(json_int(sub.json(), {"member_count"}), 0);
  EXPECT_EQ(json_str(sub.json(), {"created_at"}), "2040-02-04T00:00:00Z");
}

TEST(GetOrg, BillingSummaryShowsPlanAndBalanceOrSpend) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com", "business");
  Client admin(server.port(), t.owner.token);
  const auto child = create_sub_org(admin, t.root, "Client");

  const auto root_billing = admin.get("/v1/orgs/" + t.root).json().at("billing");
  EXPECT_EQ(json_str(root_billing, {"plan"}), "business");
  EXPECT_EQ(root_billing.at("consolidated"), json::value(false));
  EXPECT_EQ(json_str(root_billing, {"payer_org_id"}), t.root);
  EXPECT_EQ(json_int(root_billing, {"balance_micros"}), 5'000'000);  // the free allowance
  EXPECT_FALSE(root_billing.as_object().contains("spend_micros"));

  const auto sub_billing = admin.get("/v1/orgs/" + child).json().at("billing");
  EXPECT_EQ(json_str(sub_billing, {"plan"}), "business");
  EXPECT_EQ(sub_billing.at("consolidated"), json::value(true));
  EXPECT_EQ(json_str(sub_billing, {"payer_org_id"}), t.root);
  EXPECT_EQ(json_int(sub_billing, {"spend_micros"}), 0);
  EXPECT_FALSE(sub_billing.as_object().contains("balance_micros"));
}

TEST(PatchOrg, RenamesTheOrgAndNothingElse) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com", "business", "Old name");
  Client admin(server.port(), t.owner.token);
  auto before = admin.get("/v1/orgs/" + t.root).json();
  const auto r = admin.patch("/v1/orgs/" + t.root, {{"name", "New name"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  before.as_object()["name"] = "New name";
  EXPECT_EQ(r.json(), before);
  EXPECT_EQ(admin.get("/v1/orgs/" + t.root).json(), before);
  EXPECT_EQ(json_str(admin.get("/v1/me").json().at("organizations").at(0), {"name"}), "New name");
}

TEST(PatchOrg, AnAdminOfAnAncestorRenamesADescendant) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  Client admin(server.port(), t.owner.token);
  const auto grandchild = create_sub_org(admin, create_sub_org(admin, t.root, "Child"), "Grandchild");
  const auto r = admin.patch("/v1/orgs/" + grandchild, {{"name", "Renamed from the top"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(json_str(op.get("/v1/orgs/" + grandchild).json(), {"name"}), "Renamed from the top");
}

TEST(PatchOrg, OnlyTheNameCanBeChanged) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  Client admin(server.port(), t.owner.token);
  const auto child = create_sub_org(admin, t.root, "Child");
  const auto before = admin.get("/v1/orgs/" + child).body;
  struct Case {
    json::object body;
    std::string field;  // "" when the refusal names no field
  };
  const std::vector<Case> cases = {
      {{{"parent_id", nullptr}}, "parent_id"},
      {{{"name", "Ok"}, {"plan", "enterprise"}}, "plan"},
      {{{"member_count", 9}}, "member_count"},
      {{{"name", ""}}, "name"},
      {{{"name", "  "}}, "name"},
      {{{"name", std::string(201, 'x')}}, "name"},
      {{{"name", nullptr}}, "name"},
      {json::object{}, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(json::serialize(c.body));
    const auto r = admin.patch("/v1/orgs/" + child, c.body);
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request");
    if (!c.field.empty()) {
      EXPECT_EQ(json_str(r.json(), {"error", "details", "field"}), c.field);
    }
  }
  EXPECT_EQ(admin.get("/v1/orgs/" + child).body, before);
}

// ------------------------------------------------------------------------------------------------
// GET /v1/orgs/{id}/sub-orgs
// ------------------------------------------------------------------------------------------------

std::vector<std::string> make_children(Client& admin, const std::string& parent, int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back(create_sub_org(admin, parent, "Child " + std::to_string(1000 + i)));
  return ids;
}

std::vector<std::string> ids_of(const json::value& page) {
  std::vector<std::string> ids;
  for (const auto& row : page.at("data").as_array()) ids.push_back(json_str(row, {"id"}));
  return ids;
}

TEST(ListSubOrgs, RowsHaveTheDocumentedShape) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com", "enterprise");
  Client admin(server.port(), t.owner.token);
  const auto child = create_sub_org(admin, t.root, "Bluebird Bakery");
  const auto r = admin.get("/v1/orgs/" + t.root + "/sub-orgs");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(keys_of(r.json()), (std::set<std::string>{"data", "next_cursor"}));
  EXPECT_TRUE(r.json().at("next_cursor").is_null());
  ASSERT_EQ(r.json().at("data").as_array().size(), 1u);
  const auto row = r.json().at("data").at(0);
  EXPECT_EQ(keys_of(row), (std::set<std::string>{"id", "name", "logo_url", "billing", "custom_domain", "member_count",
                                                 "redundant_subscription"}));
  EXPECT_EQ(json_str(row, {"id"}), child);
  EXPECT_EQ(json_str(row, {"name"}), "Bluebird Bakery");
  EXPECT_TRUE(row.at("logo_url").is_null());
  EXPECT_TRUE(row.at("custom_domain").is_null());
  EXPECT_EQ(json_int(row, {"member_count"}), 0);
  EXPECT_EQ(row.at("redundant_subscription"), json::value(false));
  // A consolidated row shows the payer's plan and its cycle spend, not a balance.
  EXPECT_EQ(keys_of(row.at("billing")), (std::set<std::string>{"plan", "consolidated", "spend_micros"}));
  EXPECT_EQ(json_str(row, {"billing", "plan"}), "enterprise");
  EXPECT_EQ(row.at("billing").at("consolidated"), json::value(true));
  EXPECT_EQ(json_int(row, {"billing", "spend_micros"}), 0);
}

TEST(ListSubOrgs, ListsDirectChildrenOnly) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  Client admin(server.port(), t.owner.token);
  const auto a = create_sub_org(admin, t.root, "A");
  const auto b = create_sub_org(admin, t.root, "B");
  create_sub_org(admin, a, "A's child");
  auto ids = ids_of(admin.get("/v1/orgs/" + t.root + "/sub-orgs").json());
  std::sort(ids.begin(), ids.end());
  auto expected = std::vector<std::string>{a, b};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(ids, expected);
  const auto leaf = admin.get("/v1/orgs/" + b + "/sub-orgs").json();
  EXPECT_EQ(leaf.at("data"), json::value(json::array{}));
  EXPECT_TRUE(leaf.at("next_cursor").is_null());
}

TEST(ListSubOrgs, IsOrderedByName) {
  TempDir dir;
  CanopyProcess server(dir.str("data"), {"--clock", "manual"});
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  Client admin(server.port(), t.owner.token);
  // Created in reverse name order, a second apart, so creation order and name order disagree.
  std::map<std::string, std::string> by_name;
  int second = 0;
  for (const char* name : {"Echo", "Delta", "Charlie", "Bravo", "Alpha"}) {
    const std::string now = "2040-01-01T00:00:0" + std::to_string(second++) + "Z";
    ASSERT_EQ(op.post("/v1/admin/clock", {{"now", now}}).status, 200u);
    by_name[name] = create_sub_org(admin, t.root, name);
  }
  std::vector<std::string> expected;
  for (const auto& [name, id] : by_name) expected.push_back(id);
  EXPECT_EQ(ids_of(admin.get("/v1/orgs/" + t.root + "/sub-orgs").json()), expected);
}

TEST(ListSubOrgs, DefaultPageIs50) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  Client admin(server.port(), t.owner.token);
  make_children(admin, t.root, 51);
  const auto first = admin.get("/v1/orgs/" + t.root + "/sub-orgs").json();
  EXPECT_EQ(first.at("data").as_array().size(), 50u);
  ASSERT_TRUE(first.at("next_cursor").is_string()) << json::serialize(first);
  const auto second =
      admin.get("/v1/orgs/" + t.root + "/sub-orgs?cursor=" + std::string(first.at("next_cursor").as_string())).json();
  EXPECT_EQ(second.at("data").as_array().size(), 1u);
  EXPECT_TRUE(second.at("next_cursor").is_null());
}

TEST(ListSubOrgs, LimitOf500IsAcceptedAnd501IsNot) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  Client admin(server.port(), t.owner.token);
  make_children(admin, t.root, 51);
  const auto all = admin.get("/v1/orgs/" + t.root + "/sub-orgs?limit=500");
  ASSERT_EQ(all.status, 200u) << all.body;
  EXPECT_EQ(all.json().at("data").as_array().size(), 51u);
  EXPECT_TRUE(all.json().at("next_cursor").is_null());
  const auto too_many = admin.get("/v1/orgs/" + t.root + "/sub-orgs?limit=501");
  EXPECT_EQ(too_many.status, 400u) << too_many.body;
  EXPECT_EQ(too_many.error_code(), "invalid_request");
  EXPECT_EQ(json_str(too_many.json(), {"error", "details", "field"}), "limit");
}

TEST(ListSubOrgs, WalkingTheCursorVisitsEveryChildExactlyOnce) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  Client admin(server.port(), t.owner.token);
  auto created = make_children(admin, t.root, 51);
  std::vector<std::string> seen;
  std::string target = "/v1/orgs/" + t.root + "/sub-orgs?limit=7";
  int pages = 0;
  for (;;) {
    const auto r = admin.get(target);
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto page = r.json();
    const auto ids = ids_of(page);
    ASSERT_LE(ids.size(), 7u);
    seen.insert(seen.end(), ids.begin(), ids.end());
    ++pages;
    ASSERT_LE(pages, 8) << "the cursor does not end";
    if (page.at("next_cursor").is_null()) break;
    EXPECT_EQ(ids.size(), 7u) << "only the last page may be short";
    target = "/v1/orgs/" + t.root + "/sub-orgs?limit=7&cursor=" + std::string(page.at("next_cursor").as_string());
  }
  EXPECT_EQ(pages, 8);  // 7 full pages and one of 2
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size()) << "a child was listed twice";
  EXPECT_EQ(unique, std::set<std::string>(created.begin(), created.end()));
}

TEST(ListSubOrgs, BadLimitsAre400) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  Client admin(server.port(), t.owner.token);
  make_children(admin, t.root, 2);
  for (const char* limit : {"0", "501", "-1", "abc", "1.5", "", "5x", "%205", "99999999999999999999999"}) {
    SCOPED_TRACE(std::string("limit=") + limit);
    const auto r = admin.get("/v1/orgs/" + t.root + "/sub-orgs?limit=" + limit);
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request");
    EXPECT_EQ(json_str(r.json(), {"error", "details", "field"}), "limit");
  }
}

TEST(ListSubOrgs, CursorsNotGivenOutByThisListAre400) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto t = make_tenant(op, "owner@example.com");
  const auto other = make_tenant(op, "other@example.com");
  Client admin(server.port(), t.owner.token);
  Client other_admin(server.port(), other.owner.token);
  const auto child = create_sub_org(admin, t.root, "Child");
  const auto grandchild = create_sub_org(admin, child, "Grandchild");
  const auto foreign = create_sub_org(other_admin, other.root, "Foreign");
  for (const std::string& cursor :
       {std::string("garbage"), std::string("org_0000000000001"), t.root, grandchild, foreign, std::string("")}) {
    SCOPED_TRACE("cursor=" + cursor);
    const auto r = admin.get("/v1/orgs/" + t.root + "/sub-orgs?cursor=" + cursor);
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request");
    EXPECT_EQ(json_str(r.json(), {"error", "details", "field"}), "cursor");
  }
}

// ------------------------------------------------------------------------------------------------
// Tenant isolation, oversight and the operator
// ------------------------------------------------------------------------------------------------

// Every implemented endpoint under an org, as (method, path suffix, body, needs an Idempotency-Key).
struct OrgCall {
  std::string method;
  std::string suffix;
  std::string body;
  bool idempotency_key = false;
};

std::vector<OrgCall> calls_under_org(const std::string& some_descendant) {
  return {
      {"GET", "", "", false},
      {"PATCH", "", R"({"name":"Hijacked"})", false},
      {"GET", "/sub-orgs", "", false},
      {"POST", "/sub-orgs", R"({"name":"Intruder"})", false},
      {"GET", "/billing", "", false},
      {"PUT", "/billing/consolidated", R"({"enabled":false})", false},
      {"PUT", "/billing/spending-limit", R"({"monthly_limit_micros":1})", false},
      {"PUT", "/billing/subscription", R"({"plan":"enterprise"})", false},
      {"DELETE", "/billing/subscription", "", false},
      {"PUT", "/billing/payment-method", R"({"brand":"visa","last4":"4242","exp_month":8,"exp_year":2099})", false},
      {"PUT", "/billing/auto-recharge", R"({"enabled":false,"threshold_micros":1,"amount_micros":1})", false},
      {"POST", "/billing/top-ups", R"({"amount_micros":1000000})", true},
      {"POST", "/billing/transfers", R"({"to_org_id":")" + some_descendant + R"(","amount_micros":1})", true},
      {"GET", "/billing/payments", "", false},
      {"POST", "/usage", R"({"id":"evt-intruder","type":"assistants.reply","quantity":1,"cost_micros":1})", false},
  };
}

// Everything a tenant's tree shows, read by the operator.
std::string snapshot(Client& op, const std::vector<std::string>& orgs) {
  std::string out;
  for (const auto& id : orgs) {
    for (const char* suffix : {"", "/billing", "/sub-orgs", "/billing/payments"}) {
      out += op.get("/v1/orgs/" + id + suffix).body + "\n";
    }
  }
  return out;
}

// A tenant with a three-level tree, and outsiders: the owner of another tenant and a user with no orgs.
struct IsolationWorld {
  TempDir dir;
  CanopyProcess server{dir.str("data")};
  std::unique_ptr<Client> op;
  Tenant a;
  std::string a_child;
  std::string a_grandchild;
  Tenant b;
  CreatedUser loner;

  IsolationWorld() {
    server.start();
    op = std::make_unique<Client>(server.port());
    a = make_tenant(*op, "a@example.com", "business", "Tenant A");
    Client admin(server.port(), a.owner.token);
    a_child = create_sub_org(admin, a.root, "A child");
    a_grandchild = create_sub_org(admin, a_child, "A grandchild");
    b = make_tenant(*op, "b@example.com", "enterprise", "Tenant B");
    loner = create_user(*op, "loner@example.com", "Loner");
  }
  std::vector<std::string> a_orgs() const { return {a.root, a_child, a_grandchild}; }
};

HttpResult call(Client& c, const OrgCall& call, const std::string& org, int& key_counter) {
  std::map<std::string, std::string> headers;
  if (call.idempotency_key) headers["Idempotency-Key"] = "iso-" + std::to_string(++key_counter);
  return c.request(call.method, "/v1/orgs/" + org + call.suffix, call.body, headers);
}

// Every call under every org of tenant A, made with `token`, is 404 not_found and changes nothing.
void expect_tenant_a_hidden_from(IsolationWorld& w, const std::string& token) {
  Client outsider(w.server.port(), token);
  const auto before = snapshot(*w.op, w.a_orgs());
  int keys = 0;
  for (const auto& org : w.a_orgs()) {
    for (const auto& c : calls_under_org(w.a_grandchild)) {
      SCOPED_TRACE(c.method + " /v1/orgs/" + org + c.suffix);
      const auto r = call(outsider, c, org, keys);
      EXPECT_EQ(r.status, 404u) << r.body;
      EXPECT_EQ(r.error_code(), "not_found");
    }
  }
  EXPECT_EQ(snapshot(*w.op, w.a_orgs()), before);
}

TEST(Isolation, AnotherTenantsAdminGets404ForTheOrgAndEverythingUnderIt) {
  IsolationWorld w;
  expect_tenant_a_hidden_from(w, w.b.owner.token);
}

TEST(Isolation, AUserWithNoMembershipGets404ForTheOrgAndEverythingUnderIt) {
  IsolationWorld w;
  expect_tenant_a_hidden_from(w, w.loner.token);
}

TEST(Isolation, The404ForAHiddenOrgIsIndistinguishableFromOneForNoOrg) {
  IsolationWorld w;
  Client outsider(w.server.port(), w.b.owner.token);
  const std::string nothing = "org_0000000000001";  // well-formed, names nothing
  int keys = 0;
  for (const auto& c : calls_under_org(w.a_grandchild)) {
    SCOPED_TRACE(c.method + " /v1/orgs/{id}" + c.suffix);
    const auto hidden = call(outsider, c, w.a_child, keys);
    const auto absent = call(outsider, c, nothing, keys);
    EXPECT_EQ(hidden.status, absent.status);
    std::string masked = hidden.body;
    for (auto at = masked.find(w.a_child); at != std::string::npos; at = masked.find(w.a_child)) {
      masked.replace(at, w.a_child.size(), nothing);
    }
    EXPECT_EQ(masked, absent.body);
    EXPECT_EQ(hidden.headers.count("www-authenticate"), absent.headers.count("www-authenticate"));
  }
}

TEST(Isolation, AnotherTenantsSubOrgIsNotACursorEither) {
  IsolationWorld w;
  Client outsider(w.server.port(), w.b.owner.token);
  create_sub_org(outsider, w.b.root, "B child");
  // A's ids mean nothing in B's list: the answer is the same as for an id that names nothing.
  const auto r = outsider.get("/v1/orgs/" + w.b.root + "/sub-orgs?cursor=" + w.a_child);
  const auto absent = outsider.get("/v1/orgs/" + w.b.root + "/sub-orgs?cursor=org_0000000000001");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body, absent.body);
}

TEST(Isolation, AnAdminOfTheParentReachesEveryDescendant) {
  IsolationWorld w;
  Client admin(w.server.port(), w.a.owner.token);
  for (const auto& org : {w.a_child, w.a_grandchild}) {
    SCOPED_TRACE(org);
    EXPECT_EQ(admin.get("/v1/orgs/" + org).status, 200u);
    EXPECT_EQ(admin.get("/v1/orgs/" + org + "/sub-orgs").status, 200u);
    EXPECT_EQ(admin.get("/v1/orgs/" + org + "/billing").status, 200u);
    EXPECT_EQ(admin.get("/v1/orgs/" + org + "/billing/payments").status, 200u);
    EXPECT_EQ(admin.patch("/v1/orgs/" + org, {{"name", "Overseen"}}).status, 200u);
    EXPECT_EQ(admin.put("/v1/orgs/" + org + "/billing/spending-limit", {{"monthly_limit_micros", 2'000'000}}).status,
              200u);
    EXPECT_EQ(admin.post("/v1/orgs/" + org + "/sub-orgs", {{"name", "New below"}}).status, 201u);
    const auto usage =
        admin.post("/v1/orgs/" + org + "/usage",
                   {{"id", "evt-" + org}, {"type", "assistants.reply"}, {"quantity", 1}, {"cost_micros", 1000}});
    EXPECT_EQ(usage.status, 200u) << usage.body;
  }
}

TEST(Isolation, TheOperatorReachesEveryOrgOfEveryTenant) {
  IsolationWorld w;
  Client& op = *w.op;
  for (const auto& org : {w.a.root, w.a_child, w.a_grandchild, w.b.root}) {
    SCOPED_TRACE(org);
    EXPECT_EQ(op.get("/v1/orgs/" + org).status, 200u);
    EXPECT_EQ(op.get("/v1/orgs/" + org + "/sub-orgs").status, 200u);
    EXPECT_EQ(op.get("/v1/orgs/" + org + "/billing").status, 200u);
    EXPECT_EQ(op.patch("/v1/orgs/" + org, {{"name", "Seen by the operator"}}).status, 200u);
  }
  EXPECT_EQ(op.post("/v1/orgs/" + w.a_grandchild + "/sub-orgs", {{"name", "Operator's"}}).status, 201u);
  EXPECT_EQ(op.post("/v1/orgs/" + w.b.root + "/sub-orgs", {{"name", "Operator's"}}).status, 201u);
}

}  // namespace
}  // namespace canopy::test
