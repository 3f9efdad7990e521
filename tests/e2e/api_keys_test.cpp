// Goal: org API keys end to end (CONTRACT.md "Conventions" auth, "Members" POST api-keys, "Usage"),
// seen from outside through the real binary.
//
// An admin or a developer creates a key (`ck_…`), shown once; lists show only a hint. A key has
// `usage:write` on its org and every descendant and nothing else: usage elsewhere is 404 (its org's
// parent and siblings do not exist for it), every other endpoint 403, and a batch refuses, per event,
// the events for orgs out of its reach. Revoking is immediate (401 on the next request) and durable,
// and keys survive a kill -9.
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "tests/e2e/harness.hpp"

namespace canopy::test {
namespace {

namespace json = boost::json;

const std::regex key_id_pattern("^key_[0-9a-hjkmnp-tv-z]{13}$");
const std::regex key_secret_pattern("^ck_[A-Za-z0-9_-]{43}$");
const std::regex rfc3339_utc("^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$");

std::set<std::string> keys_of(const json::value& v) {
  std::set<std::string> keys;
  if (!v.is_object()) return keys;
  for (const auto& [k, _] : v.as_object()) keys.insert(std::string(k));
  return keys;
}

json::value event(const std::string& id, std::int64_t cost) {
  return {{"id", id}, {"type", "assistants.reply"}, {"quantity", 1}, {"cost_micros", cost}};
}
json::value item(const std::string& id, const std::string& org, std::int64_t cost) {
  return {{"id", id}, {"org_id", org}, {"type", "assistants.reply"}, {"quantity", 1}, {"cost_micros", cost}};
}

struct Key {
  std::string id;
  std::string secret;
};

// One server: an owner who is admin of business root R, with sub-orgs A (child A1) and B, and a second
// tenant X. R holds the credits every consolidated event draws on.
class ApiKeys : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<CanopyProcess>(dir_.str("data"), std::vector<std::string>{"--outbox", dir_.str("outbox")});
    server_->start();
    connect();
    owner = create_user(op(), "owner@agency.example", "Owner");
    root = create_root(op(), owner.id, "business", "Agency");
    owner_ = std::make_unique<Client>(port(), owner.token);
    a = create_sub_org(owner_c(), root, "A");
    a1 = create_sub_org(owner_c(), a, "A1");
    b = create_sub_org(owner_c(), root, "B");
    grant(op(), root, 50'000'000);
    other = create_user(op(), "other@elsewhere.example", "Other");
    x = create_root(op(), other.id, "business", "Elsewhere");
    grant(op(), x, 50'000'000);
  }

  void connect() {
    op_ = std::make_unique<Client>(port());
    if (!owner.token.empty()) owner_ = std::make_unique<Client>(port(), owner.token);
  }
  void restart_after_kill9() {
    server_->kill9();
    server_->start();
    connect();
  }

  // Invites `email` into `org` with `role` and accepts anonymously: a new user, direct member only.
  CreatedUser join(const std::string& org, const std::string& email, const std::string& role) {
    return join_by_invitation(owner_c(), port(), org, email, role);
  }

  Key create_key(Client& as, const std::string& org, const std::string& name) {
    auto r = as.post("/v1/orgs/" + org + "/api-keys", {{"name", name}});
    EXPECT_EQ(r.status, 201u) << r.body;
    return {json_str(r.json(), {"id"}), json_str(r.json(), {"key"})};
  }

  std::vector<json::value> list_keys(Client& as, const std::string& org) {
    auto r = as.get("/v1/orgs/" + org + "/api-keys");
    EXPECT_EQ(r.status, 200u) << r.body;
    std::vector<json::value> rows;
    if (r.status != 200) return rows;
    EXPECT_TRUE(r.json().at("next_cursor").is_null()) << r.body;
    const auto v = r.json();
    for (const auto& row : v.at("data").as_array()) rows.push_back(row);
    return rows;
  }
  std::vector<std::string> listed_ids(Client& as, const std::string& org) {
    std::vector<std::string> ids;
    for (const auto& row : list_keys(as, org)) ids.push_back(json_str(row, {"id"}));
    return ids;
  }

  std::int64_t balance(const std::string& org) {
    auto r = op().get("/v1/orgs/" + org + "/billing");
    EXPECT_EQ(r.status, 200u) << r.body;
    return json_int(r.json(), {"available_balance_micros"});
  }

  Client& op() { return *op_; }
  Client& owner_c() { return *owner_; }
  std::uint16_t port() const { return server_->port(); }

  CreatedUser owner;
  CreatedUser other;
  std::string root, a, a1, b, x;

 private:
  TempDir dir_;
  std::unique_ptr<CanopyProcess> server_;
  std::unique_ptr<Client> op_;
  std::unique_ptr<Client> owner_;
};

// --- creating ------------------------------------------------------------------------------------------

TEST_F(ApiKeys, AnAdminOrADeveloperCreatesAKeyAnd201ShowsTheSecretOnce) {
  const auto admin = join(a, "admin@a.example", "admin");
  const auto developer = join(a, "dev@a.example", "developer");
  Client as_admin(port(), admin.token);
  Client as_developer(port(), developer.token);
  std::set<std::string> secrets, ids;
  for (auto [c, name] : std::vector<std::pair<Client*, std::string>>{
           {&as_admin, "Admin's key"}, {&as_developer, "Dev's key"}, {&owner_c(), "From above"}, {&op(), "Operator's"}}) {
    SCOPED_TRACE(name);
    const auto r = c->post("/v1/orgs/" + a + "/api-keys", {{"name", name}});
    ASSERT_EQ(r.status, 201u) << r.body;
    const auto v = r.json();
    auto fields = keys_of(v);
    // org_id is an extra the server may add; when there, it names the key's org.
    if (fields.erase("org_id")) {
      EXPECT_EQ(json_str(v, {"org_id"}), a);
    }
    EXPECT_EQ(fields, (std::set<std::string>{"id", "name", "key", "created_at"})) << r.body;
    EXPECT_TRUE(std::regex_match(json_str(v, {"id"}), key_id_pattern)) << r.body;
    EXPECT_TRUE(std::regex_match(json_str(v, {"key"}), key_secret_pattern)) << r.body;
    EXPECT_EQ(json_str(v, {"name"}), name);
    EXPECT_TRUE(std::regex_match(json_str(v, {"created_at"}), rfc3339_utc)) << r.body;
    secrets.insert(json_str(v, {"key"}));
    ids.insert(json_str(v, {"id"}));
  }
  EXPECT_EQ(secrets.size(), 4u);
  EXPECT_EQ(ids.size(), 4u);
}

TEST_F(ApiKeys, ManagersAgentsAndOutsidersMayNotCreateListOrRevoke) {
  const auto manager = join(a, "manager@a.example", "manager");
  const auto agent = join(a, "agent@a.example", "agent");
  const auto b_admin = join(b, "admin@b.example", "admin");
  const auto a1_admin = join(a1, "admin@a1.example", "admin");
  const auto key = create_key(owner_c(), a, "Existing");
  struct Who {
    std::string name;
    std::string token;
    unsigned status;
    std::string code;
  };
  for (const auto& who : std::vector<Who>{{"manager of A", manager.token, 403, "forbidden"},
                                          {"agent of A", agent.token, 403, "forbidden"},
                                          {"admin of sibling B", b_admin.token, 404, "not_found"},
                                          {"admin of child A1", a1_admin.token, 404, "not_found"},
                                          {"owner of another tenant", other.token, 404, "not_found"}}) {
    SCOPED_TRACE(who.name);
    Client c(port(), who.token);
    for (const auto& r : {c.post("/v1/orgs/" + a + "/api-keys", {{"name", "Mine"}}), c.get("/v1/orgs/" + a + "/api-keys"),
                          c.del("/v1/orgs/" + a + "/api-keys/" + key.id)}) {
      EXPECT_EQ(r.status, who.status) << r.body;
      EXPECT_EQ(r.error_code(), who.code) << r.body;
    }
  }
  // Nothing was created or revoked.
  EXPECT_EQ(listed_ids(owner_c(), a), (std::vector<std::string>{key.id}));
  Client with_key(port(), key.secret);
  EXPECT_EQ(with_key.post("/v1/orgs/" + a + "/usage", event("still", 1)).status, 200u);
}

// --- listing -------------------------------------------------------------------------------------------

TEST_F(ApiKeys, TheListShowsAHintButNeverTheSecret) {
  const auto developer = join(a, "dev@a.example", "developer");
  Client as_developer(port(), developer.token);
  const auto k1 = create_key(as_developer, a, "First");
  const auto k2 = create_key(op(), a, "Second");
  for (Client* c : {&as_developer, &owner_c(), &op()}) {
    const auto r = c->get("/v1/orgs/" + a + "/api-keys");
    ASSERT_EQ(r.status, 200u) << r.body;
    for (const auto& secret : {k1.secret, k2.secret}) {
      EXPECT_EQ(r.body.find(secret.substr(3)), std::string::npos) << "the secret leaks: " << r.body;
      EXPECT_EQ(r.body.find(secret.substr(3, 12)), std::string::npos) << "part of the secret leaks: " << r.body;
      EXPECT_EQ(r.body.find(secret.substr(secret.size() - 12, 8)), std::string::npos) << "part of the secret leaks: " << r.body;
    }
    const auto listed = r.json();
    const auto& rows = listed.at("data").as_array();
    ASSERT_EQ(rows.size(), 2u) << r.body;
    EXPECT_TRUE(r.json().at("next_cursor").is_null());
    // Oldest first.
    EXPECT_EQ(json_str(rows[0], {"id"}), k1.id);
    EXPECT_EQ(json_str(rows[1], {"id"}), k2.id);
    for (std::size_t i = 0; i < 2; ++i) {
      const auto& k = i == 0 ? k1 : k2;
      EXPECT_FALSE(rows[i].as_object().contains("key")) << r.body;
      EXPECT_FALSE(rows[i].as_object().contains("secret")) << r.body;
      EXPECT_EQ(keys_of(rows[i]), (std::set<std::string>{"id", "name", "hint", "created_at", "created_by"})) << r.body;
      EXPECT_EQ(json_str(rows[i], {"hint"}), "ck_\u2026" + k.secret.substr(k.secret.size() - 4)) << r.body;
      EXPECT_TRUE(std::regex_match(json_str(rows[i], {"created_at"}), rfc3339_utc)) << r.body;
    }
    EXPECT_EQ(json_str(rows[0], {"name"}), "First");
    EXPECT_EQ(json_str(rows[1], {"name"}), "Second");
    EXPECT_EQ(json_str(rows[0], {"created_by"}), developer.id);
    EXPECT_TRUE(rows[1].at("created_by").is_null()) << r.body;  // the operator is no user
  }
  // Pages of one, by cursor.
  const auto page1 = op().get("/v1/orgs/" + a + "/api-keys?limit=1");
  ASSERT_EQ(page1.status, 200u) << page1.body;
  ASSERT_EQ(page1.json().at("data").as_array().size(), 1u);
  EXPECT_EQ(json_str(page1.json().at("data").as_array()[0], {"id"}), k1.id);
  const auto cursor = json_str(page1.json(), {"next_cursor"});
  const auto page2 = op().get("/v1/orgs/" + a + "/api-keys?limit=1&cursor=" + cursor);
  ASSERT_EQ(page2.status, 200u) << page2.body;
  ASSERT_EQ(page2.json().at("data").as_array().size(), 1u);
  EXPECT_EQ(json_str(page2.json().at("data").as_array()[0], {"id"}), k2.id);
  EXPECT_TRUE(page2.json().at("next_cursor").is_null()) << page2.body;
  // Each org lists its own keys only.
  EXPECT_TRUE(list_keys(op(), a1).empty());
  EXPECT_TRUE(list_keys(op(), root).empty());
}

// --- what a key may do ------------------------------------------------------------------------------------

TEST_F(ApiKeys, AKeyChargesUsageOnItsOrgAndItsDescendantsOnly) {
  const auto key = create_key(owner_c(), a, "Usage");
  Client k(port(), key.secret);
  const auto before = balance(root);

  auto on_a = k.post("/v1/orgs/" + a + "/usage", event("e-a", 1'000'000));
  ASSERT_EQ(on_a.status, 200u) << on_a.body;
  EXPECT_EQ(on_a.json(), json::value({{"id", "e-a"}, {"status", "accepted"}, {"payer_org_id", root}}));
  auto on_a1 = k.post("/v1/orgs/" + a1 + "/usage", event("e-a1", 2'000'000));
  ASSERT_EQ(on_a1.status, 200u) << on_a1.body;
  EXPECT_EQ(on_a1.json(), json::value({{"id", "e-a1"}, {"status", "accepted"}, {"payer_org_id", root}}));

  for (const auto& [org, name] : std::vector<std::pair<std::string, std::string>>{
           {root, "the parent"}, {b, "a sibling"}, {x, "another tenant"}, {"org_0000000000000", "an org that is not there"}}) {
    SCOPED_TRACE(name);
    const auto r = k.post("/v1/orgs/" + org + "/usage", event("e-out", 1'000'000));
    EXPECT_EQ(r.status, 404u) << r.body;
    EXPECT_EQ(r.error_code(), "not_found") << r.body;
  }
  EXPECT_EQ(balance(root), before - 3'000'000);
  EXPECT_EQ(balance(x), 50'000'000 + 5'000'000);  // its grant and the monthly allowance, untouched
  // A key of the child cannot reach up either.
  const auto child_key = create_key(owner_c(), a1, "Child");
  Client ck(port(), child_key.secret);
  const auto up = ck.post("/v1/orgs/" + a + "/usage", event("e-up", 1));
  EXPECT_EQ(up.status, 404u) << up.body;
  EXPECT_EQ(up.error_code(), "not_found");
}

TEST_F(ApiKeys, AKeyCanDoNothingElse) {
  const auto key = create_key(owner_c(), a, "Narrow");
  Client k(port(), key.secret);
  const std::string A = "/v1/orgs/" + a;
  struct Case {
    std::string method, path, body;
  };
  const std::vector<Case> forbidden = {
      {"GET", A, ""},
      {"GET", "/v1/orgs/" + a1, ""},
      {"PATCH", A, R"({"name":"Renamed"})"},
      {"GET", A + "/billing", ""},
      {"GET", A + "/billing/payments", ""},
      {"PUT", A + "/billing/spending-limit", R"({"monthly_limit_micros":1})"},
      {"PUT", A + "/billing/consolidated", R"({"enabled":false})"},
      {"POST", A + "/billing/grants", R"({"amount_micros":1000000,"reason":"free money"})"},
      {"GET", A + "/sub-orgs", ""},
      {"POST", A + "/sub-orgs", R"({"name":"Mine"})"},
      {"GET", A + "/members", ""},
      {"POST", A + "/invitations", R"({"email":"someone@example.com","role":"admin"})"},
      {"GET", A + "/customization", ""},
      {"PUT", A + "/settings/show-credits-balance", R"({"enabled":false})"},
      {"GET", A + "/api-keys", ""},
      {"POST", A + "/api-keys", R"({"name":"Another"})"},
      {"DELETE", A + "/api-keys/" + key.id, ""},
      {"GET", "/v1/me", ""},
      {"POST", "/v1/users", R"({"email":"new@example.com","name":"New"})"},
      {"POST", "/v1/orgs", R"({"name":"Mine","plan":"business","owner_user_id":")" + owner.id + R"("})"},
      {"POST", "/v1/invitations/ci_whatever/accept", R"({"name":"Key"})"},
  };
  for (const auto& c : forbidden) {
    SCOPED_TRACE(c.method + " " + c.path);
    const auto r = k.request(c.method, c.path, c.body);
    EXPECT_EQ(r.status, 403u) << r.body;
    EXPECT_EQ(r.error_code(), "forbidden") << r.body;
  }
  // Out of its reach, things do not exist.
  for (const auto& path : {"/v1/orgs/" + root, "/v1/orgs/" + b + "/billing", "/v1/orgs/" + x + "/api-keys"}) {
    const auto r = k.get(path);
    EXPECT_EQ(r.status, 404u) << path << ": " << r.body;
    EXPECT_EQ(r.error_code(), "not_found") << path;
  }
  // None of it took effect.
  EXPECT_EQ(json_str(op().get(A).json(), {"name"}), "A");
  EXPECT_EQ(listed_ids(op(), a), (std::vector<std::string>{key.id}));
  EXPECT_EQ(op().get(A + "/sub-orgs").json().at("data").as_array().size(), 1u);
  EXPECT_EQ(balance(a), 0);
}

TEST_F(ApiKeys, ABatchWithAKeyRefusesPerEventWhatIsOutOfItsReach) {
  const auto key = create_key(owner_c(), a, "Batch");
  Client k(port(), key.secret);
  const auto before = balance(root);
  json::array events{item("b1", a, 1'000'000),  item("b2", root, 1'000'000), item("b3", a1, 2'000'000),
                     item("b4", b, 1'000'000),  item("b5", x, 1'000'000),    item("b6", "org_0000000000000", 1),
                     item("b7", "not-an-id", 1)};
  const auto r = k.post("/v1/usage:batch", {{"events", events}});
  ASSERT_EQ(r.status, 200u) << r.body;
  const auto answer = r.json();
  const auto& results = answer.at("results").as_array();
  ASSERT_EQ(results.size(), 7u) << r.body;
  const std::vector<std::pair<std::string, bool>> expected{{"b1", true},  {"b2", false}, {"b3", true}, {"b4", false},
                                                           {"b5", false}, {"b6", false}, {"b7", false}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(expected[i].first);
    EXPECT_EQ(json_str(results[i], {"id"}), expected[i].first);
    if (expected[i].second) {
      EXPECT_EQ(json_str(results[i], {"status"}), "accepted") << json::serialize(results[i]);
      EXPECT_EQ(json_str(results[i], {"payer_org_id"}), root);
      EXPECT_FALSE(results[i].as_object().contains("code"));
    } else {
      // Refused as not_found, exactly like the single-event endpoint: other orgs do not exist for the key.
      EXPECT_EQ(json_str(results[i], {"status"}), "refused") << json::serialize(results[i]);
      EXPECT_EQ(json_str(results[i], {"code"}), "not_found") << json::serialize(results[i]);
    }
  }
  EXPECT_EQ(balance(root), before - 3'000'000);
  EXPECT_EQ(balance(x), 55'000'000);
  // The refused events were not recorded: their ids are still fresh for those orgs.
  const auto retry = op().post("/v1/usage:batch", {{"events", json::array{item("b2", root, 500'000)}}});
  ASSERT_EQ(retry.status, 200u) << retry.body;
  EXPECT_EQ(json_str(retry.json().at("results").as_array()[0], {"status"}), "accepted") << retry.body;
  EXPECT_EQ(balance(root), before - 3'500'000);
  // A batch is not for users, even admins.
  Client as_owner(port(), owner.token);
  const auto by_user = as_owner.post("/v1/usage:batch", {{"events", json::array{item("u1", a, 1)}}});
  EXPECT_EQ(by_user.status, 403u) << by_user.body;
  EXPECT_EQ(by_user.error_code(), "forbidden");
}

// --- revoking ---------------------------------------------------------------------------------------------

TEST_F(ApiKeys, ARevokedKeyIs401AtOnceAndGoneFromTheList) {
  const auto admin = join(a, "admin@a.example", "admin");
  Client as_admin(port(), admin.token);
  const auto k1 = create_key(as_admin, a, "Doomed");
  const auto k2 = create_key(as_admin, a, "Kept");
  Client c1(port(), k1.secret);
  ASSERT_EQ(c1.post("/v1/orgs/" + a + "/usage", event("before", 1)).status, 200u);

  const auto revoked = as_admin.del("/v1/orgs/" + a + "/api-keys/" + k1.id);
  EXPECT_EQ(revoked.status, 204u) << revoked.body;
  EXPECT_EQ(revoked.body, "");
  // The very next request with it, on the same connection, is unauthenticated.
  for (const auto& r : {c1.post("/v1/orgs/" + a + "/usage", event("after", 1)),
                        c1.post("/v1/usage:batch", {{"events", json::array{item("after-b", a, 1)}}}),
                        c1.get("/v1/orgs/" + a)}) {
    EXPECT_EQ(r.status, 401u) << r.body;
    EXPECT_EQ(r.error_code(), "unauthenticated") << r.body;
  }
  Client c2(port(), k2.secret);
  EXPECT_EQ(c2.post("/v1/orgs/" + a + "/usage", event("other", 1)).status, 200u);
  EXPECT_EQ(listed_ids(as_admin, a), (std::vector<std::string>{k2.id}));

  const auto again = as_admin.del("/v1/orgs/" + a + "/api-keys/" + k1.id);
  EXPECT_EQ(again.status, 404u) << again.body;
  EXPECT_EQ(again.error_code(), "not_found");
  for (const auto& bogus : {std::string("key_0000000000000"), std::string("nonsense")}) {
    const auto r = as_admin.del("/v1/orgs/" + a + "/api-keys/" + bogus);
    EXPECT_EQ(r.status, 404u) << bogus << ": " << r.body;
    EXPECT_EQ(r.error_code(), "not_found") << bogus;
  }
}

TEST_F(ApiKeys, AKeyIsRevokedOnlyThroughItsOwnOrg) {
  const auto key_b = create_key(owner_c(), b, "B's");
  const auto key_a = create_key(owner_c(), a, "A's");
  // Another org's key through this org: 404, even for an admin of both (the owner), and for the operator.
  for (Client* c : {&owner_c(), &op()}) {
    for (const auto& [via, id] : std::vector<std::pair<std::string, std::string>>{
             {a, key_b.id}, {root, key_a.id}, {a1, key_a.id}, {b, key_a.id}}) {
      const auto r = c->del("/v1/orgs/" + via + "/api-keys/" + id);
      EXPECT_EQ(r.status, 404u) << via << " " << id << ": " << r.body;
      EXPECT_EQ(r.error_code(), "not_found");
    }
  }
  // Another tenant's admin cannot revoke it either (the org does not exist for them).
  Client outsider(port(), other.token);
  EXPECT_EQ(outsider.del("/v1/orgs/" + a + "/api-keys/" + key_a.id).status, 404u);
  Client kb(port(), key_b.secret), ka(port(), key_a.secret);
  EXPECT_EQ(kb.post("/v1/orgs/" + b + "/usage", event("b", 1)).status, 200u);
  EXPECT_EQ(ka.post("/v1/orgs/" + a + "/usage", event("a", 1)).status, 200u);
  // A developer of the org may revoke.
  const auto developer = join(a, "dev@a.example", "developer");
  Client as_developer(port(), developer.token);
  const auto r = as_developer.del("/v1/orgs/" + a + "/api-keys/" + key_a.id);
  EXPECT_EQ(r.status, 204u) << r.body;
  EXPECT_EQ(ka.post("/v1/orgs/" + a + "/usage", event("a2", 1)).status, 401u);
}

// --- durability -------------------------------------------------------------------------------------------

TEST_F(ApiKeys, KeysSurviveKill9AndARevokedKeyStaysRevoked) {
  const auto kept = create_key(owner_c(), a, "Kept");
  const auto revoked = create_key(owner_c(), a, "Revoked");
  const auto before_list = list_keys(op(), a);
  ASSERT_EQ(owner_c().del("/v1/orgs/" + a + "/api-keys/" + revoked.id).status, 204u);
  const auto last = create_key(owner_c(), a1, "Made just before the crash");  // no pause before the kill
  const auto last_list = list_keys(op(), a1);
  restart_after_kill9();

  Client k(port(), kept.secret), r(port(), revoked.secret), l(port(), last.secret);
  const auto ok = k.post("/v1/orgs/" + a1 + "/usage", event("after-restart", 1'000));
  EXPECT_EQ(ok.status, 200u) << ok.body;
  const auto ok_last = l.post("/v1/orgs/" + a1 + "/usage", event("after-restart-2", 1'000));
  EXPECT_EQ(ok_last.status, 200u) << ok_last.body;
  const auto refused = r.post("/v1/orgs/" + a + "/usage", event("zombie", 1'000));
  EXPECT_EQ(refused.status, 401u) << refused.body;
  EXPECT_EQ(refused.error_code(), "unauthenticated");
  // The lists read as before the crash, less the revoked key.
  const auto after = list_keys(op(), a);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0], before_list[0]);
  EXPECT_EQ(list_keys(op(), a1), last_list);
  // Revoking after the restart works and lasts.
  ASSERT_EQ(owner_c().del("/v1/orgs/" + a + "/api-keys/" + kept.id).status, 204u);
  restart_after_kill9();
  Client k2(port(), kept.secret);
  EXPECT_EQ(k2.post("/v1/orgs/" + a + "/usage", event("zombie-2", 1)).status, 401u);
  EXPECT_TRUE(list_keys(op(), a).empty());
}

// --- input limits -----------------------------------------------------------------------------------------

TEST_F(ApiKeys, TheNameIsRequiredAndValidatedAndUnknownFieldsAreRefused) {
  struct Case {
    std::string body;
    std::string field;
  };
  const std::vector<Case> cases = {
      {R"({})", "name"},
      {R"({"name":""})", "name"},
      {R"({"name":"   "})", "name"},
      {R"({"name":null})", "name"},
      {R"({"name":42})", "name"},
      {R"({"name":["a"]})", "name"},
      {R"({"name":"tab\there"})", "name"},
      {R"({"name":")" + std::string(201, 'k') + R"("})", "name"},
      {R"({"name":"ok","scopes":["usage:write"]})", "scopes"},
      {R"({"name":"ok","key":"ck_mychosensecret"})", "key"},
      {R"({"name":"ok","org_id":")" + b + R"("})", "org_id"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body.substr(0, 80));
    const auto r = owner_c().request("POST", "/v1/orgs/" + a + "/api-keys", c.body);
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request") << r.body;
    EXPECT_EQ(json_str(r.json(), {"error", "details", "field"}), c.field) << r.body;
  }
  for (const auto& body : {std::string("{"), std::string("not json"), std::string("[]"), std::string()}) {
    const auto r = owner_c().request("POST", "/v1/orgs/" + a + "/api-keys", body);
    EXPECT_EQ(r.status, 400u) << "'" << body << "': " << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request") << r.body;
  }
  EXPECT_TRUE(list_keys(op(), a).empty());
  EXPECT_TRUE(list_keys(op(), b).empty());
  // 200 bytes is the most a name may have; it comes back intact.
  const std::string longest(200, 'k');
  const auto r = owner_c().post("/v1/orgs/" + a + "/api-keys", {{"name", longest}});
  ASSERT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(json_str(r.json(), {"name"}), longest);
  EXPECT_EQ(json_str(list_keys(op(), a).at(0), {"name"}), longest);
}

}  // namespace
}  // namespace canopy::test
