#include "domain/members.hpp"

#include <algorithm>

#include "config/limits.hpp"

namespace canopy::domain {
namespace {

Error forbidden(std::string message) { return Error{Errc::forbidden, std::move(message)}; }

bool last_admin_of_root(const OrgState& org, UserId user) {
  const Member* m = org.find_member(user);
  return org.is_root() && m && m->role == Role::admin && org.admin_count() == 1;
}

Error last_admin_error() {
  return Error{Errc::last_admin, "This is the last admin of a root organization; make someone else admin first"};
}

}  // namespace

std::optional<Error> check_invite(const OrgState& org, const Access& inviter, Role role, std::optional<UserId> invitee,
                                  Timestamp now) {
  if (role == Role::admin && !inviter.admin()) return forbidden("Only an admin can invite an admin");
  if (invitee && org.find_member(*invitee)) {
    return Error{Errc::conflict, "A user with this email is already a member of this organization", {{"field", "email"}}};
  }
  const auto pending = std::count_if(org.invitations.begin(), org.invitations.end(),
                                     [now](const Invitation& inv) { return state_at(inv, now) == InvitationState::pending; });
  if (static_cast<std::size_t>(pending) >= limits::pending_invitations_per_org_max) {
    return Error{Errc::conflict, "This organization has " + std::to_string(limits::pending_invitations_per_org_max) +
                                     " pending invitations, the most it can hold; revoke some first"};
  }
  return std::nullopt;
}

std::optional<Error> check_change_member(const OrgState& org, const Access& actor, UserId target,
                                         std::optional<Role> role) {
  const Member* m = org.find_member(target);
  if (!m) return Error{Errc::not_found, "No member with this user id in this organization"};
  if (!actor.admin() && (m->role == Role::admin || role == Role::admin)) {
    return forbidden("A manager can neither grant the admin role nor change or remove an admin");
  }
  if (role != Role::admin && last_admin_of_root(org, target)) return last_admin_error();
  return std::nullopt;
}

std::optional<Error> check_set_my_role(const OrgState& org, const Access& caller, UserId user, Role role) {
  if (!caller.ancestor_admin) {
    return forbidden("Only an admin of an ancestor organization can set their own role here");
  }
  // An ancestor admin is never the last admin of a root (a root has no ancestors), but keep the rule whole.
  if (role != Role::admin && last_admin_of_root(org, user)) return last_admin_error();
  return std::nullopt;
}

std::optional<Error> check_leave(const OrgState& org, UserId user) {
  if (!org.find_member(user)) return Error{Errc::not_found, "You are not a member of this organization"};
  if (last_admin_of_root(org, user)) return last_admin_error();
  return std::nullopt;
}

InvitationState state_at(const Invitation& invitation, Timestamp now) {
  return now >= invitation.expires_at ? InvitationState::expired : InvitationState::pending;
}

Error invitation_used_error() { return Error{Errc::invitation_used, "This invitation has already been used"}; }
Error invitation_expired_error() { return Error{Errc::invitation_expired, "This invitation has expired; ask for a new one"}; }

std::optional<Error> check_create_api_key(const OrgState& org) {
  if (org.api_keys.size() >= limits::api_keys_per_org_max) {
    return Error{Errc::conflict, "This organization has " + std::to_string(limits::api_keys_per_org_max) +
                                     " API keys, the most it can hold; revoke one first"};
  }
  return std::nullopt;
}

}  // namespace canopy::domain
