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

namespace {

TokenHash hash_of(std::uint8_t seed) {
  TokenHash h{};
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<std::uint8_t>(seed + i);
  return h;
}

Invitation sample_invitation() {
  return Invitation{InvitationId{77}, "bob@example.com", Role::manager, UserId{1}, 1'700'000'000, 1'700'604'800, hash_of(3)};
}

ApiKey sample_key() { return ApiKey{KeyId{88}, "ci deploy", "Vzfc", UserId{1}, 1'700'000'000, hash_of(9)}; }

// One of every record that members, keys and settings added (records.hpp).
std::vector<Record> member_records() {
  UserCreated user{UserId{5}, "new@example.com", "New Person", hash_of(1), 1'700'000'100};
  return {
      CustomizationSet{OrgId{2}, "Acme", Customization{"https://a.test/l.png", "hi@a.test", "1 Main St\nTown",
                                                       "https://a.test/tos", "https://a.test/privacy"}},
      ShowCreditsSet{OrgId{2}, true},
      ApiKeyCreated{OrgId{2}, sample_key()},
      ApiKeyRevoked{OrgId{2}, KeyId{88}, hash_of(9)},
      InvitationCreated{OrgId{2}, sample_invitation()},
      InvitationRevoked{OrgId{2}, InvitationId{77}, hash_of(3)},
      InvitationAccepted{OrgId{2}, InvitationId{77}, hash_of(3), UserId{5}, Role::manager, 1'700'000'100, user},
      InvitationAccepted{OrgId{2}, InvitationId{78}, hash_of(4), UserId{6}, Role::agent, 1'700'000'200, std::nullopt},
  };
}

}  // namespace

TEST(Codec, MemberKeyAndSettingsRecordsRoundTripExactly) {
  for (const Record& record : member_records()) {
    const std::string bytes = encode(record);
    const auto decoded = decode_record(bytes);
    ASSERT_TRUE(decoded) << "record index " << record.index();
    EXPECT_EQ(decoded->index(), record.index());
    EXPECT_EQ(encode(*decoded), bytes) << "record index " << record.index();
  }
  const auto accepted = decode_record(encode(member_records()[6]));
  const auto& a = std::get<InvitationAccepted>(*accepted);
  ASSERT_TRUE(a.new_user);
  EXPECT_EQ(a.new_user->email, "new@example.com");
  EXPECT_EQ(a.new_user->token_hash, hash_of(1));
  EXPECT_EQ(a.role, Role::manager);
}

TEST(Codec, DamagedMemberRecordsNeverDecode) {
  for (const Record& record : member_records()) {
    const std::string bytes = encode(record);
    for (std::size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(decode_record(bytes.substr(0, n))) << record.index() << "@" << n;
    EXPECT_FALSE(decode_record(bytes + "z")) << record.index();
  }
}

TEST(Codec, AnInvitationWithoutARoleIsCorrupt) {
  std::string bytes = encode(Record{InvitationCreated{OrgId{2}, sample_invitation()}});
  // tag, version, org varint (1 byte), id varint (1 byte), email (len + 15 bytes), then the role.
  const std::size_t role_at = 2 + 1 + 1 + 1 + 15;
  ASSERT_EQ(bytes[role_at], static_cast<char>(Role::manager));
  bytes[role_at] = 0;
  EXPECT_FALSE(decode_record(bytes));
}

TEST(Codec, OrgStateWithBrandingKeysAndInvitationsRoundTrips) {
  OrgState org;
  org.id = OrgId{42};
  org.name = "Acme";
  org.members = {Member{UserId{1}, Role::admin}};
  org.customization = Customization{"https://a.test/l.png", "hi@a.test", "addr", "https://a.test/t", "https://a.test/p"};
  org.custom_domain = CustomDomain{"portal.acme.test", true};
  org.api_keys = {sample_key()};
  org.invitations = {sample_invitation()};
  const auto decoded = decode_org(encode(org));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, org);
}

TEST(Codec, OrgStateWrittenByVersionOneStillDecodes) {
  // Version 1 ended after the members; version 2 added five strings (customization), a domain flag,
  // a key count and an invitation count; version 3 a threshold count, a low-balance flag and a webhook
  // count; version 4 the snapshot's journal seq. An org with none of them set encodes each as one
  // zero byte.
  OrgState org;
  org.id = OrgId{42};
  org.name = "Old";
  org.members = {Member{UserId{1}, Role::admin}};
  const std::string v4 = encode(org);
  ASSERT_EQ(v4[1], 4);
  ASSERT_EQ(v4.substr(v4.size() - 12), std::string(12, '\0'));
  std::string v3 = v4.substr(0, v4.size() - 1);
  v3[1] = 3;
  std::string v2 = v4.substr(0, v4.size() - 4);
  v2[1] = 2;
  std::string v1 = v4.substr(0, v4.size() - 12);
  v1[1] = 1;
  for (const std::string& bytes : {v1, v2, v3}) {
    std::uint64_t as_of = 99;
    const auto decoded = decode_org(bytes, &as_of);
    ASSERT_TRUE(decoded) << "version " << int(bytes[1]);
    EXPECT_EQ(*decoded, org);
    EXPECT_EQ(as_of, 0u) << "an old snapshot is as of the checkpoint mark, not of a seq of its own";
  }
  std::string future = v4;
  future[1] = 5;  // a version this build does not know
  EXPECT_FALSE(decode_org(future));
}

TEST(Codec, OrgSnapshotKeepsTheSeqItIsAsOf) {
  OrgState org;
  org.id = OrgId{7};
  org.name = "Now";
  for (const std::uint64_t seq : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{123456789}, UINT64_MAX}) {
    std::uint64_t as_of = 0;
    const auto decoded = decode_org(encode(org, seq), &as_of);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, org);
    EXPECT_EQ(as_of, seq);
  }
}

TEST(Codec, TokenRowsRoundTripPerKind) {
  const TokenRow rows[] = {{TokenKind::user, 5, 0, false},
                           {TokenKind::api_key, 2, 88, false},
                           {TokenKind::invitation, 2, 77, false},
                           {TokenKind::invitation, 2, 77, true}};
  for (const auto& row : rows) {
    const auto decoded = decode_token_row(encode(row));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, row);
  }
  EXPECT_EQ(encode(rows[0]).size(), 9u);  // the layout user tokens have had since the first version
  EXPECT_FALSE(decode_token_row(encode(rows[1]).substr(0, 16)));
  std::string bad_used = encode(rows[3]);
  bad_used.back() = 2;
  EXPECT_FALSE(decode_token_row(bad_used));
  std::string unknown_kind = encode(rows[0]);
  unknown_kind[0] = 9;
  EXPECT_FALSE(decode_token_row(unknown_kind));
}
