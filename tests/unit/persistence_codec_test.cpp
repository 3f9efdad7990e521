// Goal: every stored value decodes to exactly what was encoded, and damaged bytes never decode.
#include <gtest/gtest.h>

#include "persistence/codec.hpp"

using namespace canopy::domain;
using namespace canopy::persistence;

TEST(Codec, OrgStateRoundTrips) {
  OrgState org;
  org.id = OrgId{42};
  org.parent = OrgId{7};
  org.depth = 1;
  org.name = "Acme Client";
  org.consolidated = true;
  org.monthly_limit_micros = 5'000'000;
  org.balance_micros = 123;
  org.cycle = 682;
  org.cycle_spend_micros = 99;
  org.members = {Member{UserId{1}, Role::admin}, Member{UserId{9}, Role::agent}};
  org.payment_method = PaymentMethod{"visa", "4242", 12, 2030};
  const auto decoded = decode_org(encode(org));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, org);
}

TEST(Codec, TruncatedValuesNeverDecode) {
  OrgState org;
  org.id = OrgId{42};
  org.name = "x";
  const std::string bytes = encode(org);
  for (std::size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(decode_org(bytes.substr(0, n))) << n;
  EXPECT_FALSE(decode_org(bytes + "z"));
}

TEST(Codec, ChargeBatchRoundTrips) {
  ChargeBatch batch;
  batch.chain = {ChainHop{OrgId{3}, 682}, ChainHop{OrgId{2}, 682}};
  batch.at = 1'700'000'000;
  batch.events = {ChargeEvent{"evt_1", "assistants.reply", 3, 1500, 1'700'000'000}};
  const auto decoded = decode_record(encode(Record{batch}));
  ASSERT_TRUE(decoded);
  const auto& got = std::get<ChargeBatch>(*decoded);
  EXPECT_EQ(got.chain, batch.chain);
  ASSERT_EQ(got.events.size(), 1u);
  EXPECT_EQ(got.events[0].id, "evt_1");
  EXPECT_EQ(got.events[0].cost_micros, 1500);
  EXPECT_EQ(got.total_micros(), 1500);
}
