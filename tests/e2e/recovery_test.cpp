// Goal: nothing acknowledged is ever lost. A server killed with SIGKILL at any moment comes back
// with every change it acknowledged (orgs, users, grants, limits, charges), the offline audit agrees,
// and SIGTERM stops it cleanly with a final checkpoint.
#include <gtest/gtest.h>

#include "tests/e2e/harness.hpp"

namespace canopy::test {
namespace {

TEST(Recovery, Kill9AfterAcknowledgedChangesLosesNothing) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto owner = create_user(op, "owner@example.com", "Owner");
  const auto root = create_root(op, owner.id, "business", "Agency");
  Client admin(server.port(), owner.token);
  const auto a = create_sub_org(admin, root, "Client A");
  const auto b = create_sub_org(admin, a, "Client A / Team B");
  grant(op, root, 50'000'000);
  ASSERT_EQ(admin.put("/v1/orgs/" + a + "/billing/spending-limit", {{"monthly_limit_micros", 7'000'000}}).status, 200u);
  for (int i = 0; i < 5; ++i) {
    auto r = admin.post("/v1/orgs/" + b + "/usage",
                        {{"id", "evt-" + std::to_string(i)}, {"type", "assistants.reply"}, {"quantity", 1},
                         {"cost_micros", 1'000'000}});
    ASSERT_EQ(r.status, 200u) << r.body;
  }
  const auto before_root = admin.get("/v1/orgs/" + root + "/billing").json();
  const auto before_a = admin.get("/v1/orgs/" + a + "/billing").json();

  server.kill9();
  const auto audit = run_canopy({"check", dir.str("data")});
  EXPECT_EQ(audit.exit_code, 0) << audit.out;

  server.start();
  Client op2(server.port());
  Client admin2(server.port(), owner.token);
  EXPECT_EQ(admin2.get("/v1/orgs/" + root + "/billing").json(), before_root);
  EXPECT_EQ(admin2.get("/v1/orgs/" + a + "/billing").json(), before_a);
  // 5,000,000 free credits + 50,000,000 granted - 5 x 1,000,000 charged.
  EXPECT_EQ(json_int(before_root, {"available_balance_micros"}), 50'000'000);
  EXPECT_EQ(json_int(before_a, {"cycle", "spend_micros"}), 5'000'000);
  EXPECT_EQ(json_str(admin2.get("/v1/orgs/" + b).json(), {"parent_id"}), a);
  const auto me = admin2.get("/v1/me").json();
  EXPECT_EQ(json_str(me.at("organizations").at(0), {"id"}), root);
  // A retry of an acknowledged event after the restart charges nothing and answers as before.
  auto retry = admin2.post("/v1/orgs/" + b + "/usage", {{"id", "evt-3"}, {"type", "assistants.reply"}, {"quantity", 1},
                                                        {"cost_micros", 1'000'000}});
  EXPECT_EQ(retry.status, 200u);
  EXPECT_EQ(json_str(retry.json(), {"payer_org_id"}), root);
  EXPECT_EQ(json_int(admin2.get("/v1/orgs/" + root + "/billing").json(), {"available_balance_micros"}), 50'000'000);
  // The same email cannot be registered twice, also after the restart.
  EXPECT_EQ(op2.post("/v1/users", {{"email", "owner@example.com"}, {"name", "Again"}}).error_code(), "email_taken");
}

TEST(Recovery, SigtermStopsCleanlyAndKeepsEverything) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto owner = create_user(op, "o@example.com");
  const auto root = create_root(op, owner.id);
  grant(op, root, 1'000'000);
  EXPECT_EQ(server.terminate(), 0);
  EXPECT_NE(server.output().find("stopped cleanly"), std::string::npos) << server.output();
  EXPECT_EQ(run_canopy({"check", dir.str("data")}).exit_code, 0);
  server.start();
  Client op2(server.port());
  EXPECT_EQ(json_int(op2.get("/v1/orgs/" + root + "/billing").json(), {"available_balance_micros"}), 6'000'000);
}

TEST(Recovery, BackupIsACompleteConsistentCopyTakenWhileServing) {
  TempDir dir;
  CanopyProcess server(dir.str("data"));
  server.start();
  Client op(server.port());
  const auto owner = create_user(op, "o@example.com");
  const auto root = create_root(op, owner.id);
  grant(op, root, 2'000'000);
  const auto backup = run_canopy({"backup", dir.str("data"), dir.str("copy")});
  ASSERT_EQ(backup.exit_code, 0) << backup.out;
  server.kill9();
  EXPECT_EQ(run_canopy({"check", dir.str("copy")}).exit_code, 0);
  CanopyProcess restored(dir.str("copy"));
  restored.start();
  Client op2(restored.port());
  EXPECT_EQ(json_int(op2.get("/v1/orgs/" + root + "/billing").json(), {"available_balance_micros"}), 7'000'000);
}

}  // namespace
}  // namespace canopy::test

namespace canopy::test {
namespace {

// The demo keeps charging in the background; SIGTERM must still stop everything cleanly.
TEST(Recovery, SigtermStopsADemoServerCleanly) {
  TempDir dir;
  CanopyProcess server(dir.str("data"), {"--demo"});
  server.start();
  Client op(server.port());
  EXPECT_EQ(op.get("/readyz").status, 200u);
  EXPECT_EQ(server.terminate(), 0);
  EXPECT_NE(server.output().find("stopped cleanly"), std::string::npos) << server.output();
  EXPECT_EQ(run_canopy({"check", dir.str("data")}).exit_code, 0);
}

}  // namespace
}  // namespace canopy::test
