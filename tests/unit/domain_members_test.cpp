// Goal: the membership rules of CONTRACT.md "Members" hold for every role, on roots and sub-orgs,
// and the invitation email is branded from the inviting org itself.
#include <gtest/gtest.h>

#include "config/limits.hpp"
#include "domain/apply.hpp"
#include "domain/invitation_email.hpp"
#include "domain/members.hpp"

using namespace canopy;
using namespace canopy::domain;

namespace {

constexpr UserId alice{1};  // admin
constexpr UserId bob{2};    // manager
constexpr UserId carol{3};  // developer
constexpr UserId dave{4};   // not a member

OrgState org_with(bool root) {
  OrgState org;
  org.id = OrgId{10};
  org.name = "Acme";
  if (!root) {
    org.parent = OrgId{9};
    org.depth = 1;
    org.consolidated = true;
  }
  org.members = {Member{alice, Role::admin}, Member{bob, Role::manager}, Member{carol, Role::developer}};
  return org;
}

Access direct(Role role) {
  Access a;
  a.direct_role = role;
  return a;
}

Access from_above() {
  Access a;
  a.ancestor_admin = true;
  return a;
}

Errc code_of(const std::optional<Error>& e) { return e ? e->code : Errc::internal; }

}  // namespace

// --- inviting ----------------------------------------------------------------------------------------

TEST(Invite, AdminsInviteAnyRoleManagersAnyButAdmin) {
  const OrgState org = org_with(true);
  for (const Role role : {Role::admin, Role::developer, Role::manager, Role::agent}) {
    EXPECT_FALSE(check_invite(org, direct(Role::admin), role, std::nullopt, 0)) << name_of(role);
    EXPECT_FALSE(check_invite(org, from_above(), role, std::nullopt, 0)) << name_of(role);
    const auto by_manager = check_invite(org, direct(Role::manager), role, std::nullopt, 0);
    if (role == Role::admin) {
      EXPECT_EQ(code_of(by_manager), Errc::forbidden);
    } else {
      EXPECT_FALSE(by_manager) << name_of(role);
    }
  }
}

TEST(Invite, AnExistingMemberIsNotInvitedAgain) {
  const OrgState org = org_with(true);
  EXPECT_EQ(code_of(check_invite(org, direct(Role::admin), Role::agent, carol, 0)), Errc::conflict);
  EXPECT_FALSE(check_invite(org, direct(Role::admin), Role::agent, dave, 0));
}

TEST(Invite, PendingInvitationsAreBoundedButExpiredOnesDoNotCount) {
  OrgState org = org_with(true);
  for (std::size_t i = 0; i < limits::pending_invitations_per_org_max; ++i) {
    org.invitations.push_back(Invitation{InvitationId{i + 1}, "x@y.test", Role::agent, alice, 0, 1000, {}});
  }
  EXPECT_EQ(code_of(check_invite(org, direct(Role::admin), Role::agent, std::nullopt, 999)), Errc::conflict);
  EXPECT_FALSE(check_invite(org, direct(Role::admin), Role::agent, std::nullopt, 1000));
}

// --- changing and removing members -----------------------------------------------------------------------

TEST(ChangeMember, AManagerNeitherGrantsNorTouchesAdmin) {
  const OrgState org = org_with(false);
  EXPECT_FALSE(check_change_member(org, direct(Role::manager), carol, Role::agent));
  EXPECT_FALSE(check_change_member(org, direct(Role::manager), carol, std::nullopt));
  EXPECT_EQ(code_of(check_change_member(org, direct(Role::manager), carol, Role::admin)), Errc::forbidden);
  EXPECT_EQ(code_of(check_change_member(org, direct(Role::manager), alice, Role::agent)), Errc::forbidden);
  EXPECT_EQ(code_of(check_change_member(org, direct(Role::manager), alice, std::nullopt)), Errc::forbidden);
}

TEST(ChangeMember, AdminsChangeAnyone) {
  const OrgState org = org_with(false);
  for (const Access& admin : {direct(Role::admin), from_above()}) {
    EXPECT_FALSE(check_change_member(org, admin, carol, Role::admin));
    EXPECT_FALSE(check_change_member(org, admin, bob, std::nullopt));
  }
}

TEST(ChangeMember, OnlyMembersCanBeChanged) {
  EXPECT_EQ(code_of(check_change_member(org_with(true), direct(Role::admin), dave, Role::agent)), Errc::not_found);
}

TEST(ChangeMember, TheLastAdminOfARootStays) {
  OrgState root = org_with(true);
  EXPECT_EQ(code_of(check_change_member(root, direct(Role::admin), alice, Role::developer)), Errc::last_admin);
  EXPECT_EQ(code_of(check_change_member(root, direct(Role::admin), alice, std::nullopt)), Errc::last_admin);
  EXPECT_FALSE(check_change_member(root, direct(Role::admin), alice, Role::admin));  // no change
  root.members[1].role = Role::admin;  // a second admin
  EXPECT_FALSE(check_change_member(root, direct(Role::admin), alice, Role::developer));
  EXPECT_FALSE(check_change_member(root, direct(Role::admin), alice, std::nullopt));
}

TEST(ChangeMember, ASubOrgMayLoseItsLastAdminBecauseAncestorsOversee) {
  const OrgState sub = org_with(false);
  EXPECT_FALSE(check_change_member(sub, from_above(), alice, std::nullopt));
  EXPECT_FALSE(check_change_member(sub, direct(Role::admin), alice, Role::agent));
}

// --- my role and leaving ------------------------------------------------------------------------------

TEST(MyRole, OnlyAnAncestorAdminSetsTheirOwnRole) {
  const OrgState sub = org_with(false);
  for (const Role role : {Role::admin, Role::developer, Role::manager, Role::agent}) {
    EXPECT_FALSE(check_set_my_role(sub, from_above(), dave, role));
    EXPECT_EQ(code_of(check_set_my_role(sub, direct(Role::developer), carol, role)), Errc::forbidden);
    EXPECT_EQ(code_of(check_set_my_role(sub, direct(Role::admin), alice, role)), Errc::forbidden);
  }
}

TEST(Leave, MembersLeaveExceptTheLastAdminOfARoot) {
  const OrgState root = org_with(true);
  EXPECT_FALSE(check_leave(root, carol));
  EXPECT_EQ(code_of(check_leave(root, alice)), Errc::last_admin);
  EXPECT_EQ(code_of(check_leave(root, dave)), Errc::not_found);
  EXPECT_FALSE(check_leave(org_with(false), alice));
}

// --- invitations over time -------------------------------------------------------------------------------

TEST(Invitation, PendingUntilItsExpiryInstant) {
  const Invitation inv{InvitationId{1}, "x@y.test", Role::agent, alice, 100, 200, {}};
  EXPECT_EQ(state_at(inv, 100), InvitationState::pending);
  EXPECT_EQ(state_at(inv, 199), InvitationState::pending);
  EXPECT_EQ(state_at(inv, 200), InvitationState::expired);
}

TEST(Invitation, AcceptingMakesAMemberAndUsesItUp) {
  OrgState org = org_with(true);
  TokenHash hash{};
  hash[0] = 7;
  apply(org, InvitationCreated{org.id, Invitation{InvitationId{5}, "dave@y.test", Role::developer, alice, 100, 200, hash}});
  ASSERT_NE(org.find_invitation(hash), nullptr);
  apply(org, InvitationAccepted{org.id, InvitationId{5}, hash, dave, Role::developer, 150, std::nullopt});
  EXPECT_EQ(org.find_invitation(hash), nullptr);
  ASSERT_NE(org.find_member(dave), nullptr);
  EXPECT_EQ(org.find_member(dave)->role, Role::developer);
  EXPECT_FALSE(check_invariants(org));
}

TEST(Invitation, ANewInvitationDropsTheExpiredOnes) {
  OrgState org = org_with(true);
  apply(org, InvitationCreated{org.id, Invitation{InvitationId{1}, "a@y.test", Role::agent, alice, 0, 100, {}}});
  apply(org, InvitationCreated{org.id, Invitation{InvitationId{2}, "b@y.test", Role::agent, alice, 50, 300, {}}});
  apply(org, InvitationCreated{org.id, Invitation{InvitationId{3}, "c@y.test", Role::agent, alice, 100, 400, {}}});
  ASSERT_EQ(org.invitations.size(), 2u);
  EXPECT_EQ(org.invitations[0].id, InvitationId{2});
  EXPECT_EQ(org.invitations[1].id, InvitationId{3});
}

TEST(ApiKeys, BoundedPerOrgAndRevocable) {
  OrgState org = org_with(true);
  for (std::size_t i = 0; i < limits::api_keys_per_org_max; ++i) {
    EXPECT_FALSE(check_create_api_key(org));
    apply(org, ApiKeyCreated{org.id, ApiKey{KeyId{i + 1}, "k", "abcd", alice, 0, {}}});
  }
  EXPECT_EQ(code_of(check_create_api_key(org)), Errc::conflict);
  apply(org, ApiKeyRevoked{org.id, KeyId{1}, {}});
  EXPECT_EQ(org.api_keys.size(), limits::api_keys_per_org_max - 1);
  EXPECT_FALSE(check_create_api_key(org));
}

// --- the invitation email --------------------------------------------------------------------------------

namespace {

OrgState branded_sub_org() {
  OrgState org = org_with(false);
  org.name = "Client <One>";
  org.customization.logo_url = "https://cdn.client.test/logo.png?a=1&b=2";
  org.customization.contact_email = "hello@client.test";
  org.customization.address = "1 Main St";
  return org;
}

const Invitation kInvitation{InvitationId{1}, "new@person.test", Role::manager, alice, 0, 604800, {}};

}  // namespace

TEST(InvitationEmail, IsBrandedFromTheOrgItself) {
  const auto mail = compose_invitation_email(branded_sub_org(), kInvitation, "ci_tok", "Alice", "https://console.test",
                                             "no-reply@console.test");
  EXPECT_EQ(mail.from_name, "Client <One>");
  EXPECT_EQ(mail.from_address, "hello@client.test");
  EXPECT_EQ(mail.from(), "\"Client <One>\" <hello@client.test>");
  EXPECT_EQ(mail.to, "new@person.test");
  EXPECT_EQ(mail.subject, "You're invited to join Client <One>");
  EXPECT_NE(mail.html.find("<img src=\"https://cdn.client.test/logo.png?a=1&amp;b=2\""), std::string::npos) << mail.html;
  EXPECT_NE(mail.html.find("Client &lt;One&gt;"), std::string::npos);
  EXPECT_EQ(mail.html.find("Client <One>"), std::string::npos) << "names are escaped in HTML";
  EXPECT_NE(mail.html.find("as manager"), std::string::npos);
  EXPECT_NE(mail.text.find("Alice invited you"), std::string::npos);
}

TEST(InvitationEmail, WithoutAContactEmailItComesFromTheConfiguredSender) {
  OrgState org = branded_sub_org();
  org.customization = {};
  const auto mail = compose_invitation_email(org, kInvitation, "ci_tok", "", "https://console.test", "no-reply@console.test");
  EXPECT_EQ(mail.from_address, "no-reply@console.test");
  EXPECT_EQ(mail.html.find("<img"), std::string::npos);
  EXPECT_NE(mail.text.find("Client <One> invited you"), std::string::npos) << "the org invites when no user did";
}

TEST(InvitationEmail, LinksThroughTheVerifiedCustomDomainOnly) {
  OrgState org = branded_sub_org();
  EXPECT_EQ(compose_invitation_email(org, kInvitation, "ci_tok", "", "https://console.test/", "n@c.test").link,
            "https://console.test/invite/ci_tok");
  org.custom_domain = CustomDomain{"portal.client.test", false};
  EXPECT_EQ(invitation_base_url(org, "https://console.test"), "https://console.test") << "pending domains are not used";
  org.custom_domain->verified = true;
  EXPECT_EQ(compose_invitation_email(org, kInvitation, "ci_tok", "", "https://console.test", "n@c.test").link,
            "https://portal.client.test/invite/ci_tok");
}

TEST(InvitationEmail, FromQuotesAndEscapesTheName) {
  InvitationEmail mail;
  mail.from_name = "A \"B\" \\ C\r\nBcc: x@y.test";
  mail.from_address = "a@b.test";
  EXPECT_EQ(mail.from(), "\"A \\\"B\\\" \\\\ CBcc: x@y.test\" <a@b.test>");
}
