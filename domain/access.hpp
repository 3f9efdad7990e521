// Who may do what: roles, oversight from ancestors, and the rule that non-members see nothing.
//
// A principal reaches an org in one of these ways (strongest first): the operator; an admin of a
// strict ancestor ("oversight from the parent": admin rights without membership); a direct membership
// with a role; an org API key of the org or an ancestor (usage:write only). Anyone else does not learn
// that the org exists: 404 not_found. A principal who reaches the org but lacks the permission: 403.
#pragma once

#include <optional>

#include "domain/catalog.hpp"

namespace canopy::domain {

enum class Permission : std::uint8_t {
  read_org,          // org, modules, indicator, members list
  manage_org,        // rename, customization, domain, modules, settings (admin)
  manage_members,    // invite, change roles, remove members: admin, manager (domain/members.hpp narrows a manager)
  manage_api_keys,   // create, list, revoke org API keys: admin, developer
  read_billing,      // admin, manager
  manage_billing,    // own subscription, payment method, top-ups, transfers (admin)
  govern_billing,    // consolidated toggle, a sub-org's limit: admin of the parent or above
  read_usage,        // admin, manager, developer
  read_sub_org_usage,  // usage across every descendant: admin, manager
  write_usage,       // api key, admin, operator
  create_sub_orgs,   // admin
};

struct Access {
  bool is_operator = false;
  bool ancestor_admin = false;        // admin of a strict ancestor
  std::optional<Role> direct_role;    // membership in this org
  bool api_key = false;               // an org API key of this org or an ancestor

  bool visible() const { return is_operator || ancestor_admin || direct_role.has_value() || api_key; }
  // Admin rights here, from a direct admin role or from above.
  bool admin() const { return is_operator || ancestor_admin || direct_role == Role::admin; }
  // Dollar amounts hidden when show-credits is on: access comes only from a membership in the org itself.
  bool direct_member_only() const { return !is_operator && !ancestor_admin && direct_role.has_value(); }
};

// REQUIRES: access.visible() (callers answer 404 first otherwise).
// `is_root` matters for govern_billing: a root governs its own limit.
bool allows(const Access& access, Permission permission, bool is_root);

}  // namespace canopy::domain
