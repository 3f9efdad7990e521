// Goal: the WebSocket stream of CONTRACT.md "WebSocket" as a dashboard sees it, through real sockets:
// authentication on the upgrade, subscribe with a snapshot, pushes when balances move (coalesced,
// seq increasing), refusals for orgs the caller may not see, usage over the socket, slow consumers
// closed with 1008 while charging goes on, and a clean close on shutdown.
#include <gtest/gtest.h>

#include "tests/e2e/harness.hpp"
#include "tests/e2e/ws_client.hpp"

namespace canopy::test {
namespace {

namespace json = boost::json;

json::value event(const std::string& id, std::int64_t cost) {
  return {{"id", id}, {"type", "assistants.reply"}, {"quantity", 1}, {"cost_micros", cost}};
}

class Stream : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<CanopyProcess>(dir_.str("data"), std::vector<std::string>{"--outbox", dir_.str("outbox")});
    server_->start();
    op_ = std::make_unique<Client>(server_->port());
    owner_ = create_user(*op_, "owner@example.com", "Owner");
    root_ = create_root(*op_, owner_.id);
    grant(*op_, root_, 10'000'000);
  }

  TempDir dir_;
  std::unique_ptr<CanopyProcess> server_;
  std::unique_ptr<Client> op_;
  CreatedUser owner_;
  std::string root_;
};

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

}  // namespace
}  // namespace canopy::test
