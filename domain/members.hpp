// Rules about who belongs to an org and with which role: invitations, role changes, leaving, and API
// keys. Pure functions; org actors call them and act on the answer, handlers never decide these.
//
// The standing rules (CONTRACT.md "Members"):
//   - admins manage every role; a manager invites and changes non-admin roles only (it can neither
//     grant admin nor change or remove an admin);
//   - the last admin of a root can be neither demoted nor removed, nor leave (409 last_admin): a root
//     has no ancestor whose admins could take over, a sub-org always has;
//   - an admin of an ancestor may give themselves a direct role in a sub-org (my-role);
//   - an invitation is single-use and good until it expires.
#pragma once

#include <optional>

#include "domain/access.hpp"
#include "domain/errors.hpp"
#include "domain/org.hpp"

namespace canopy::domain {

// May `inviter` invite someone as `role`? `invitee` is the user the email belongs to, if any: a member
// already is not invited again. (The permission to invite at all is Permission::manage_members.)
std::optional<Error> check_invite(const OrgState& org, const Access& inviter, Role role, std::optional<UserId> invitee,
                                  Timestamp now);

// May `actor` give member `target` the role `role` (none: remove them)?
std::optional<Error> check_change_member(const OrgState& org, const Access& actor, UserId target,
                                         std::optional<Role> role);

// May the caller (reaching the org as `caller`) set their own direct role here? Only admins of an
// ancestor may: a member cannot promote themselves.
std::optional<Error> check_set_my_role(const OrgState& org, const Access& caller, UserId user, Role role);

// May `user` leave the org (drop their direct membership)?
std::optional<Error> check_leave(const OrgState& org, UserId user);

enum class InvitationState : std::uint8_t { pending, expired };
InvitationState state_at(const Invitation& invitation, Timestamp now);

// The errors of accepting an invitation that is no longer pending.
Error invitation_used_error();
Error invitation_expired_error();

// May the org get another API key?
std::optional<Error> check_create_api_key(const OrgState& org);

}  // namespace canopy::domain
