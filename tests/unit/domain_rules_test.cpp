// Goal: the fixed rules of the domain read as the contract states them: ids and tokens are opaque,
// prefixed and strictly parsed; who may do what (the whole role x permission table, oversight from
// ancestors, the operator, API keys); what client input is valid; which modules a plan pays for and
// which are parent-gated; and how the non-money journal records change an org.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "config/limits.hpp"
#include "domain/access.hpp"
#include "domain/apply.hpp"
#include "domain/catalog.hpp"
#include "domain/charge.hpp"
#include "domain/ids.hpp"
#include "domain/validation.hpp"

using namespace canopy::domain;
namespace limits = canopy::limits;

namespace {

constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();
constexpr std::string_view crockford = "0123456789abcdefghjkmnpqrstvwxyz";

void fold(OrgState& org, const Record& record) { canopy::domain::apply(org, record); }

}  // namespace

// --- ids ---------------------------------------------------------------------------------------------

TEST(Ids, FormatIsPrefixAndThirteenBase32Characters) {
  const std::string id = format_id(org_prefix, 0x0123456789abcdefULL);
  ASSERT_EQ(id.size(), org_prefix.size() + 13);
  EXPECT_EQ(id.substr(0, 4), "org_");
  for (char c : id.substr(4)) EXPECT_NE(crockford.find(c), std::string_view::npos) << id;
}

TEST(Ids, KnownValuesFormatAsExpected) {
  EXPECT_EQ(to_string(OrgId{1}), "org_0000000000001");
  EXPECT_EQ(to_string(UserId{32}), "usr_0000000000010");
  EXPECT_EQ(to_string(KeyId{31}), "key_000000000000z");
  EXPECT_EQ(to_string(PaymentId{u64_max}), "pay_fzzzzzzzzzzzz");
}

TEST(Ids, EveryBitPatternRoundTrips) {
  std::vector<std::uint64_t> values = {1, 2, 31, 32, 1023, 1024, u64_max, u64_max - 1, 1ULL << 63};
  for (int bit = 0; bit < 64; ++bit) values.push_back(1ULL << bit);
  for (int k = 0; k < 1000; ++k) values.push_back(random_id());
  for (std::uint64_t v : values) {
    const auto parsed = parse_id(user_prefix, format_id(user_prefix, v));
    ASSERT_TRUE(parsed) << v;
    EXPECT_EQ(*parsed, v);
  }
}

TEST(Ids, FormattingIsOrderPreserving) {
  // Equal-length strings of a sorted alphabet: the id text sorts like the number.
  EXPECT_LT(format_id(org_prefix, 41), format_id(org_prefix, 42));
  EXPECT_LT(format_id(org_prefix, u64_max - 1), format_id(org_prefix, u64_max));
}

TEST(Ids, TypedParsersRoundTrip) {
  EXPECT_EQ(parse_org_id(to_string(OrgId{77})), OrgId{77});
  EXPECT_EQ(parse_user_id(to_string(UserId{78})), UserId{78});
}

TEST(Ids, ParseRejectsAnotherKindsPrefix) {
  EXPECT_FALSE(parse_org_id(to_string(UserId{77})));
  EXPECT_FALSE(parse_user_id(to_string(OrgId{77})));
  EXPECT_FALSE(parse_id(key_prefix, to_string(PaymentId{77})));
}

TEST(Ids, ParseRejectsAPrefixInAnotherCaseOrMissing) {
  EXPECT_FALSE(parse_org_id("ORG_0000000000001"));
  EXPECT_FALSE(parse_org_id("org0000000000001"));
  EXPECT_FALSE(parse_org_id("0000000000001"));
  EXPECT_FALSE(parse_org_id("_org_0000000000001"));
}

TEST(Ids, ParseRejectsWrongLength) {
  EXPECT_FALSE(parse_org_id(""));
  EXPECT_FALSE(parse_org_id("org_"));
  EXPECT_FALSE(parse_org_id("org_000000000001"));    // 12 characters
  EXPECT_FALSE(parse_org_id("org_00000000000001"));  // 14 characters
  EXPECT_FALSE(parse_org_id(to_string(OrgId{5}) + " "));
}

TEST(Ids, ParseRejectsCharactersOutsideTheAlphabet) {
  // Crockford leaves out i, l, o and u; punctuation, spaces and bytes outside ASCII are never digits.
  for (std::string bad : {"i", "l", "o", "u", "-", "_", " ", "=", "\x00", "\xc3"}) {
    if (bad.empty()) bad.push_back('\0');
    const std::string text = "org_000000000000" + bad;
    EXPECT_FALSE(parse_org_id(text)) << text;
    const std::string front = "org_" + bad + "000000000001";
    EXPECT_FALSE(parse_org_id(front)) << front;
  }
  EXPECT_FALSE(parse_org_id(std::string("org_00000000\0" "0001", 17)));
}

TEST(Ids, ParseRejectsZero) {
  EXPECT_FALSE(parse_org_id("org_0000000000000"));
  EXPECT_FALSE(parse_id(payment_prefix, "pay_0000000000000"));
}

TEST(Ids, ParseRejectsAFirstCharacterThatWouldOverflow64Bits) {
  EXPECT_EQ(parse_id(org_prefix, "org_fzzzzzzzzzzzz"), u64_max);
  for (char c : crockford.substr(16)) {
    const std::string text = std::string("org_") + c + "000000000000";
    EXPECT_FALSE(parse_id(org_prefix, text)) << text;
  }
  EXPECT_FALSE(parse_id(org_prefix, "org_g000000000000"));
  EXPECT_FALSE(parse_id(org_prefix, "org_zzzzzzzzzzzzz"));
}

TEST(Ids, RandomIdsAreNonzeroAndDistinct) {
  std::set<std::uint64_t> seen;
  for (int k = 0; k < 10'000; ++k) {
    const std::uint64_t v = random_id();
    EXPECT_NE(v, 0u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 10'000u);
}

// --- tokens -------------------------------------------------------------------------------------------

TEST(Tokens, UserTokenIsPrefixAnd43Base64UrlCharacters) {
  static constexpr std::string_view base64url =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (std::string_view prefix : {user_token_prefix, api_key_prefix}) {
    const std::string token = make_token(prefix);
    ASSERT_EQ(token.size(), prefix.size() + 43) << token;
    EXPECT_EQ(token.substr(0, prefix.size()), prefix);
    for (char c : token.substr(prefix.size())) EXPECT_NE(base64url.find(c), std::string_view::npos) << token;
  }
}

TEST(Tokens, EveryTokenIsDifferent) {
  std::set<std::string> seen;
  for (int k = 0; k < 10'000; ++k) seen.insert(make_token(api_key_prefix));
  EXPECT_EQ(seen.size(), 10'000u);
}

TEST(Tokens, HashIsSha256) {
  const TokenHash h = hash_token("abc");
  EXPECT_EQ(to_hex(h.data(), h.size()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const TokenHash empty = hash_token("");
  EXPECT_EQ(to_hex(empty.data(), empty.size()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Tokens, HashIsStableForTheSameToken) {
  const std::string token = make_token(user_token_prefix);
  EXPECT_TRUE(hashes_equal(hash_token(token), hash_token(token)));
  EXPECT_EQ(hash_token(token), hash_token(std::string(token)));
}

TEST(Tokens, HashesOfDifferentTokensDiffer) {
  const std::string token = make_token(user_token_prefix);
  std::string changed = token;
  changed.back() = changed.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(hashes_equal(hash_token(token), hash_token(changed)));
  EXPECT_FALSE(hashes_equal(hash_token(token), hash_token(token.substr(0, token.size() - 1))));
}

TEST(Tokens, HashesEqualNoticesADifferenceInAnyByte) {
  const TokenHash a = hash_token("cu_example");
  EXPECT_TRUE(hashes_equal(a, a));
  for (std::size_t i = 0; i < a.size(); ++i) {
    TokenHash b = a;
    b[i] = static_cast<std::uint8_t>(b[i] ^ 0x01);
    EXPECT_FALSE(hashes_equal(a, b)) << "byte " << i;
  }
}

TEST(Tokens, HexIsLowerCaseTwoDigitsPerByte) {
  const std::array<std::uint8_t, 4> bytes = {0x00, 0x0f, 0xa0, 0xff};
  EXPECT_EQ(to_hex(bytes.data(), bytes.size()), "000fa0ff");
  EXPECT_EQ(to_hex(bytes.data(), 0), "");
}

// --- access -------------------------------------------------------------------------------------------

namespace {

constexpr std::array<Permission, 11> all_permissions = {
    Permission::read_org,     Permission::manage_org,     Permission::manage_members, Permission::manage_api_keys,
    Permission::read_billing, Permission::manage_billing, Permission::govern_billing, Permission::read_usage,
    Permission::read_sub_org_usage, Permission::write_usage,  Permission::create_sub_orgs};
constexpr std::array<std::string_view, 11> permission_names = {
    "read_org",     "manage_org",     "manage_members", "manage_api_keys", "read_billing",
    "manage_billing", "govern_billing", "read_usage", "read_sub_org_usage", "write_usage", "create_sub_orgs"};

// One row of the expected table: which permissions, in all_permissions order.
using Row = std::array<bool, 11>;
//                               read  manage members keys  rbill mbill govern rusage rsub  wusage subs
constexpr Row admin_of_sub_org  {true, true,  true,  true, true, true, false, true,  true,  true,  true};
constexpr Row admin_of_root     {true, true,  true,  true, true, true, true,  true,  true,  true,  true};
constexpr Row manager_row       {true, false, true,  false, true, false, false, true, true,  false, false};
constexpr Row developer_row     {true, false, false, true, false, false, false, true,  false, false, false};
constexpr Row agent_row         {true, false, false, false, false, false, false, false, false, false, false};
constexpr Row everything        {true, true,  true,  true, true, true, true,  true,  true,  true,  true};
constexpr Row usage_write_only  {false, false, false, false, false, false, false, false, false, true, false};

void expect_row(const Access& access, bool is_root, const Row& want, const std::string& who) {
  for (std::size_t i = 0; i < all_permissions.size(); ++i) {
    EXPECT_EQ(allows(access, all_permissions[i], is_root), want[i])
        << who << (is_root ? " of a root" : " of a sub-org") << ", permission " << permission_names[i];
  }
}

Access member(Role role) {
  Access a;
  a.direct_role = role;
  return a;
}

}  // namespace

TEST(Access, DirectAdminOfASubOrgHasEverythingButGoverningItsOwnBilling) {
  expect_row(member(Role::admin), false, admin_of_sub_org, "admin");
}

TEST(Access, DirectAdminOfARootAlsoGovernsItsOwnBilling) {
  expect_row(member(Role::admin), true, admin_of_root, "admin");
}

TEST(Access, ManagerInvitesAndReadsBillingAndUsage) {
  expect_row(member(Role::manager), false, manager_row, "manager");
  expect_row(member(Role::manager), true, manager_row, "manager");
}

TEST(Access, DeveloperCreatesApiKeysAndReadsUsage) {
  expect_row(member(Role::developer), false, developer_row, "developer");
  expect_row(member(Role::developer), true, developer_row, "developer");
}

TEST(Access, AgentOnlyReadsTheOrg) {
  expect_row(member(Role::agent), false, agent_row, "agent");
  expect_row(member(Role::agent), true, agent_row, "agent");
}

TEST(Access, AdminOfAnAncestorHasEverythingIncludingGovernance) {
  Access a;
  a.ancestor_admin = true;
  expect_row(a, false, everything, "ancestor admin");
}

TEST(Access, AncestorAdminWithAWeakerDirectRoleKeepsAdminRights) {
  for (Role role : {Role::agent, Role::developer, Role::manager, Role::admin}) {
    Access a = member(role);
    a.ancestor_admin = true;
    expect_row(a, false, everything, "ancestor admin with direct role " + std::string(name_of(role)));
  }
}

TEST(Access, OperatorMayDoEverything) {
  Access a;
  a.is_operator = true;
  expect_row(a, false, everything, "operator");
  expect_row(a, true, everything, "operator");
}

TEST(Access, ApiKeyAloneMayOnlyWriteUsage) {
  Access a;
  a.api_key = true;
  expect_row(a, false, usage_write_only, "api key");
  expect_row(a, true, usage_write_only, "api key");
}

TEST(Access, NobodyIsNotVisible) {
  EXPECT_FALSE(Access{}.visible());
  EXPECT_FALSE(Access{}.admin());
  EXPECT_FALSE(Access{}.direct_member_only());
}

TEST(Access, EveryWayInMakesTheOrgVisible) {
  Access op;
  op.is_operator = true;
  Access anc;
  anc.ancestor_admin = true;
  Access key;
  key.api_key = true;
  for (const Access& a : {op, anc, key, member(Role::agent)}) EXPECT_TRUE(a.visible());
}

TEST(Access, AdminRightsComeFromOperatorAncestorOrDirectAdminOnly) {
  Access op;
  op.is_operator = true;
  Access anc;
  anc.ancestor_admin = true;
  Access key;
  key.api_key = true;
  EXPECT_TRUE(op.admin());
  EXPECT_TRUE(anc.admin());
  EXPECT_TRUE(member(Role::admin).admin());
  EXPECT_FALSE(key.admin());
  for (Role role : {Role::manager, Role::developer, Role::agent}) EXPECT_FALSE(member(role).admin()) << name_of(role);
}

TEST(Access, OnlyADirectMembershipWithoutOversightHidesDollars) {
  for (Role role : {Role::admin, Role::manager, Role::developer, Role::agent}) {
    EXPECT_TRUE(member(role).direct_member_only()) << name_of(role);
    Access with_oversight = member(role);
    with_oversight.ancestor_admin = true;
    EXPECT_FALSE(with_oversight.direct_member_only()) << name_of(role);
  }
  Access op;
  op.is_operator = true;
  EXPECT_FALSE(op.direct_member_only());
}

// --- validation ---------------------------------------------------------------------------------------

TEST(Validation, NamesOfOneToTheMaximumBytesAreValid) {
  EXPECT_FALSE(check_name("A"));
  EXPECT_FALSE(check_name("Acme Agency"));
  EXPECT_FALSE(check_name(std::string(limits::name_bytes_max, 'x')));
  EXPECT_FALSE(check_name("Caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\xb3"));  // é, €, 🌳
}

TEST(Validation, EmptyOrOverlongNamesAreRejected) {
  EXPECT_TRUE(check_name(""));
  EXPECT_TRUE(check_name(std::string(limits::name_bytes_max + 1, 'x')));
}

TEST(Validation, BlankNamesAreRejected) {
  EXPECT_TRUE(check_name(" "));
  EXPECT_TRUE(check_name("   "));
}

TEST(Validation, NamesWithControlCharactersAreRejected) {
  for (std::string bad : {"a\nb", "a\tb", "a\rb", "a\x7f", "\x1b[31m"}) EXPECT_TRUE(check_name(bad)) << bad;
  EXPECT_TRUE(check_name(std::string("a\0b", 3)));
}

TEST(Validation, NamesThatAreNotUtf8AreRejected) {
  for (std::string bad : {"\xff", "abc\xc3", "\xe2\x82", "\xf0\x9f\x8c", "\x80", "a\xc3(", "\xe2\x28\xa1"}) {
    EXPECT_TRUE(check_name(bad)) << bad;
  }
}

TEST(Validation, PlausibleEmailsAreValid) {
  for (std::string good : {"a@b.co", "ann.lee+canopy@example.com", "x@sub.domain.example",
                           "A@EXAMPLE.COM"}) {
    EXPECT_FALSE(check_email(good)) << good;
  }
  const std::string longest = std::string(254 - std::string("@example.com").size(), 'a') + "@example.com";
  ASSERT_EQ(longest.size(), 254u);
  EXPECT_FALSE(check_email(longest));
}

TEST(Validation, MalformedEmailsAreRejected) {
  for (std::string bad : {"", "plain", "@example.com", "ann@", "ann@example", "ann@@example.com",
                          "ann@x@example.com", "ann@.example.com", "ann@example.com.", "ann@example..com",
                          "ann lee@example.com", "ann@exa mple.com", "ann@example.com\n", "\tann@example.com",
                          "ann@.c"}) {
    EXPECT_TRUE(check_email(bad)) << bad;
  }
  EXPECT_TRUE(check_email(std::string(255 - std::string("@example.com").size(), 'a') + "@example.com"));
}

TEST(Validation, NormalizingAnEmailLowerCasesIt) {
  EXPECT_EQ(normalize_email("Ann.Lee@Example.COM"), "ann.lee@example.com");
  EXPECT_EQ(normalize_email("ann@example.com"), "ann@example.com");
}

TEST(Validation, EventIdsArePrintableAsciiUpToTheLimit) {
  EXPECT_FALSE(check_event_id("e"));
  EXPECT_FALSE(check_event_id("evt_2026-11-26:0001/~!"));
  EXPECT_FALSE(check_event_id(std::string(limits::event_id_bytes_max, 'e')));
}

TEST(Validation, EventIdsEmptyOverlongOrNotPrintableAreRejected) {
  EXPECT_TRUE(check_event_id(""));
  EXPECT_TRUE(check_event_id(std::string(limits::event_id_bytes_max + 1, 'e')));
  for (std::string bad : {"a b", "a\tb", "a\nb", "a\x7f", "caf\xc3\xa9"}) EXPECT_TRUE(check_event_id(bad)) << bad;
  EXPECT_TRUE(check_event_id(std::string("a\0b", 3)));
}

TEST(Validation, EventQuantityAndCostRunFromZeroToTheirLimits) {
  for (const std::int64_t ok : {std::int64_t{0}, std::int64_t{1}, static_cast<std::int64_t>(limits::quantity_max)}) {
    EXPECT_FALSE(check_event_quantity(ok)) << ok;
  }
  EXPECT_TRUE(check_event_quantity(-1));
  EXPECT_TRUE(check_event_quantity(static_cast<std::int64_t>(limits::quantity_max) + 1));
  EXPECT_FALSE(check_event_cost(0));
  EXPECT_FALSE(check_event_cost(limits::amount_micros_max));
  EXPECT_TRUE(check_event_cost(-1));
  EXPECT_TRUE(check_event_cost(limits::amount_micros_max + 1));
}

TEST(Validation, EventTypeIsAKnownModuleDotAction) {
  EXPECT_FALSE(check_event_type("assistants.reply"));
  EXPECT_FALSE(check_event_type("broadcasts.sms"));
  EXPECT_FALSE(check_event_type("inbox.message_2"));
  for (std::string_view module : module_names) {
    const std::string type = std::string(module) + ".x";
    EXPECT_FALSE(check_event_type(type)) << type;
  }
}

TEST(Validation, EventTypeWithAnUnknownModuleIsRejected) {
  for (std::string bad : {"billing.reply", "Assistants.reply", "assistant.reply", "assistants_x.reply", ".reply"}) {
    EXPECT_TRUE(check_event_type(bad)) << bad;
  }
}

TEST(Validation, EventTypeWithoutAValidActionIsRejected) {
  for (std::string bad : {"", "assistants", "assistants.", "assistants.Reply", "assistants.re-ply",
                          "assistants.re ply", "assistants.a.b", "assistants.reply\n"}) {
    EXPECT_TRUE(check_event_type(bad)) << bad;
  }
}

TEST(Validation, EventTypeUpToTheLengthLimit) {
  const std::string head = "inbox.";
  EXPECT_FALSE(check_event_type(head + std::string(limits::event_type_bytes_max - head.size(), 'a')));
  EXPECT_TRUE(check_event_type(head + std::string(limits::event_type_bytes_max - head.size() + 1, 'a')));
}

TEST(Validation, IdempotencyKeysArePrintableAsciiOfOneTo255) {
  EXPECT_FALSE(check_idempotency_key("k"));
  EXPECT_FALSE(check_idempotency_key(std::string(limits::idempotency_key_bytes_max, 'k')));
  EXPECT_TRUE(check_idempotency_key(""));
  EXPECT_TRUE(check_idempotency_key(std::string(limits::idempotency_key_bytes_max + 1, 'k')));
  EXPECT_TRUE(check_idempotency_key("a b"));
}

// --- catalog ------------------------------------------------------------------------------------------

TEST(Catalog, FreePlanLacksBroadcastsAndWorkflowsOnly) {
  const ModuleSet free = plan_modules(Plan::free);
  for (std::size_t i = 0; i < module_count; ++i) {
    const auto m = static_cast<Module>(i);
    const bool want = m != Module::broadcasts && m != Module::workflows;
    EXPECT_EQ((free & bit(m)) != 0, want) << name_of(m);
  }
}

TEST(Catalog, PaidPlansHaveEveryModule) {
  for (Plan p : {Plan::pay_as_you_go, Plan::business, Plan::enterprise}) {
    EXPECT_EQ(plan_modules(p), all_modules) << name_of(p);
  }
}

TEST(Catalog, OnlyBroadcastsAndWorkflowsAreParentGated) {
  for (std::size_t i = 0; i < module_count; ++i) {
    const auto m = static_cast<Module>(i);
    EXPECT_EQ(parent_gated(m), m == Module::broadcasts || m == Module::workflows) << name_of(m);
  }
}

TEST(Catalog, SubOrgsNeedBusinessOrEnterprise) {
  EXPECT_FALSE(plan_allows_sub_orgs(Plan::free));
  EXPECT_FALSE(plan_allows_sub_orgs(Plan::pay_as_you_go));
  EXPECT_TRUE(plan_allows_sub_orgs(Plan::business));
  EXPECT_TRUE(plan_allows_sub_orgs(Plan::enterprise));
}

TEST(Catalog, WireNamesRoundTrip) {
  for (std::string_view n : role_names) EXPECT_EQ(name_of(*parse_role(n)), n);
  for (std::string_view n : plan_names) EXPECT_EQ(name_of(*parse_plan(n)), n);
  for (std::string_view n : module_names) EXPECT_EQ(name_of(*parse_module(n)), n);
  EXPECT_EQ(parse_role("manager"), Role::manager);
  EXPECT_EQ(parse_plan("pay_as_you_go"), Plan::pay_as_you_go);
  EXPECT_EQ(parse_module("audience"), Module::audience);
}

TEST(Catalog, UnknownOrMiscasedNamesDoNotParse) {
  for (std::string_view bad : {"", "Admin", "owner", "admin "}) EXPECT_FALSE(parse_role(bad)) << bad;
  for (std::string_view bad : {"", "Free", "pro", "pay-as-you-go"}) EXPECT_FALSE(parse_plan(bad)) << bad;
  for (std::string_view bad : {"", "Inbox", "billing", "inbox."}) EXPECT_FALSE(parse_module(bad)) << bad;
}

TEST(Catalog, EventTypeNamesItsModule) {
  EXPECT_EQ(module_of_event_type("assistants.reply"), Module::assistants);
  EXPECT_EQ(module_of_event_type("broadcasts.sms"), Module::broadcasts);
  EXPECT_FALSE(module_of_event_type("assistants"));
  EXPECT_FALSE(module_of_event_type("nope.reply"));
}

// --- records that are not money -----------------------------------------------------------------------

namespace {

OrgState root_org() {
  return make_org(OrgCreated{OrgId{1}, OrgId::none, "Root", Plan::business, UserId{50}, 0, 1'000, 682, true,
                             5'000'000, PaymentId{9}});
}

OrgState sub_org() {
  return make_org(OrgCreated{OrgId{2}, OrgId{1}, "Client", std::nullopt, UserId::none, 1, 1'000, 682, false, 0,
                             PaymentId::none});
}

}  // namespace

TEST(Records, ARootStartsSelfPayingWithItsOwnerAsAdminAndTheAllowance) {
  const OrgState root = root_org();
  EXPECT_TRUE(root.is_root());
  EXPECT_TRUE(root.pays_for_itself());
  EXPECT_FALSE(root.consolidated);
  EXPECT_EQ(root.members, (std::vector<Member>{Member{UserId{50}, Role::admin}}));
  EXPECT_EQ(root.balance_micros, 5'000'000);
  EXPECT_EQ(root.cycle, 682);
  EXPECT_EQ(root.subscription, Plan::business);
  EXPECT_FALSE(check_invariants(root));
}

TEST(Records, ASubOrgStartsConsolidatedWithNoMembersAndNoMoney) {
  const OrgState sub = sub_org();
  EXPECT_FALSE(sub.is_root());
  EXPECT_TRUE(sub.consolidated);
  EXPECT_FALSE(sub.pays_for_itself());
  EXPECT_TRUE(sub.members.empty());
  EXPECT_EQ(sub.balance_micros, 0);
  EXPECT_FALSE(check_invariants(sub));
}

TEST(Records, MembersStaySortedAndUnique) {
  OrgState org = sub_org();
  for (std::uint64_t user : {30u, 10u, 20u, 10u}) fold(org, Record{MemberSet{org.id, UserId{user}, Role::agent}});
  EXPECT_EQ(org.members, (std::vector<Member>{Member{UserId{10}, Role::agent}, Member{UserId{20}, Role::agent},
                                              Member{UserId{30}, Role::agent}}));
  EXPECT_FALSE(check_invariants(org));
}

TEST(Records, MemberSetChangesTheRoleOfAnExistingMember) {
  OrgState org = root_org();
  fold(org, Record{MemberSet{org.id, UserId{50}, Role::manager}});
  ASSERT_NE(org.find_member(UserId{50}), nullptr);
  EXPECT_EQ(org.find_member(UserId{50})->role, Role::manager);
  EXPECT_EQ(org.members.size(), 1u);
}

TEST(Records, MemberSetWithoutARoleRemovesAndIgnoresStrangers) {
  OrgState org = root_org();
  fold(org, Record{MemberSet{org.id, UserId{60}, Role::agent}});
  fold(org, Record{MemberSet{org.id, UserId{50}, std::nullopt}});
  fold(org, Record{MemberSet{org.id, UserId{70}, std::nullopt}});
  EXPECT_EQ(org.members, (std::vector<Member>{Member{UserId{60}, Role::agent}}));
  EXPECT_EQ(org.find_member(UserId{50}), nullptr);
}

TEST(Records, ConsolidatedBillingTogglesOnASubOrg) {
  OrgState org = sub_org();
  fold(org, Record{ConsolidatedSet{org.id, false}});
  EXPECT_TRUE(org.pays_for_itself());
  fold(org, Record{ConsolidatedSet{org.id, true}});
  EXPECT_FALSE(org.pays_for_itself());
}

TEST(Records, ARootCanNeverBecomeConsolidated) {
  OrgState org = root_org();
  fold(org, Record{ConsolidatedSet{org.id, true}});
  EXPECT_FALSE(org.consolidated);
  EXPECT_TRUE(org.pays_for_itself());
  EXPECT_FALSE(check_invariants(org));
}

TEST(Records, ASubscriptionOnAConsolidatedSubOrgIsRedundant) {
  OrgState org = sub_org();
  fold(org, Record{SubscriptionSet{org.id, Plan::business}});
  EXPECT_TRUE(org.redundant_subscription());
  fold(org, Record{ConsolidatedSet{org.id, false}});
  EXPECT_FALSE(org.redundant_subscription());
  EXPECT_FALSE(root_org().redundant_subscription());
}

TEST(Records, SucceededPaymentsAddAndFailedOnesMoveNothing) {
  OrgState org = root_org();
  fold(org, Record{PaymentRecorded{org.id, PaymentId{3}, PaymentKind::grant, PaymentStatus::succeeded, 700, 0, "",
                                   "promo"}});
  EXPECT_EQ(org.balance_micros, 5'000'700);
  fold(org, Record{PaymentRecorded{org.id, PaymentId{4}, PaymentKind::top_up, PaymentStatus::failed, 900, 0, "k",
                                   "declined"}});
  EXPECT_EQ(org.balance_micros, 5'000'700);
}

TEST(Records, TransferMovesCreditsFromOneOrgToTheOther) {
  OrgState from = root_org();
  OrgState to = sub_org();
  const Record transfer{TransferRecorded{from.id, to.id, PaymentId{5}, PaymentId{6}, 1'000'000, 0, "k"}};
  fold(from, transfer);
  fold(to, transfer);
  EXPECT_EQ(from.balance_micros, 4'000'000);
  EXPECT_EQ(to.balance_micros, 1'000'000);
}

TEST(Records, TransferOfMoreThanTheBalanceStopsTheProcessRatherThanGoNegative) {
  OrgState from = sub_org();
  const Record transfer{TransferRecorded{from.id, OrgId{3}, PaymentId{5}, PaymentId{6}, 1, 0, "k"}};
  EXPECT_DEATH(fold(from, transfer), "invariant failed");
}

TEST(Records, EachRecordNamesTheOrgsItChanges) {
  EXPECT_TRUE(orgs_touched(Record{UserCreated{}}).empty());
  EXPECT_EQ(orgs_touched(Record{LimitSet{OrgId{4}, 1}}), std::vector<OrgId>{OrgId{4}});
  EXPECT_EQ(orgs_touched(Record{TransferRecorded{OrgId{1}, OrgId{2}, {}, {}, 1, 0, ""}}),
            (std::vector<OrgId>{OrgId{1}, OrgId{2}}));
  ChargeBatch batch;
  batch.chain = {ChainHop{OrgId{3}, 0}, ChainHop{OrgId{2}, 0}, ChainHop{OrgId{1}, 0}};
  EXPECT_EQ(orgs_touched(Record{batch}), (std::vector<OrgId>{OrgId{3}, OrgId{2}, OrgId{1}}));
}

TEST(Records, RenameChangesOnlyTheName) {
  OrgState org = root_org();
  OrgState want = org;
  want.name = "Renamed";
  fold(org, Record{OrgRenamed{org.id, "Renamed"}});
  EXPECT_EQ(org, want);
}

TEST(Records, InvariantsCatchABrokenOrg) {
  OrgState org = root_org();
  org.balance_micros = -1;
  EXPECT_TRUE(check_invariants(org));
  org = root_org();
  org.cycle_spend_micros = -1;
  EXPECT_TRUE(check_invariants(org));
  org = root_org();
  org.consolidated = true;
  EXPECT_TRUE(check_invariants(org));
  org = sub_org();
  org.depth = 0;
  EXPECT_TRUE(check_invariants(org));
  org = root_org();
  org.members = {Member{UserId{2}, Role::agent}, Member{UserId{1}, Role::agent}};
  EXPECT_TRUE(check_invariants(org));
  org = root_org();
  org.monthly_limit_micros = -1;
  EXPECT_TRUE(check_invariants(org));
}
