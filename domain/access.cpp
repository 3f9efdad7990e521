#include "domain/access.hpp"

namespace canopy::domain {

bool allows(const Access& access, Permission permission, bool is_root) {
  if (access.is_operator) return true;
  if (access.api_key && !access.ancestor_admin && !access.direct_role) {
    return permission == Permission::write_usage;
  }
  if (permission == Permission::govern_billing) {
    return access.ancestor_admin || (is_root && access.direct_role == Role::admin);
  }
  if (access.admin()) return true;
  if (!access.direct_role) return false;
  switch (*access.direct_role) {
    case Role::admin: return true;
    case Role::manager:
      return permission == Permission::read_org || permission == Permission::manage_members ||
             permission == Permission::read_billing || permission == Permission::read_usage ||
             permission == Permission::read_sub_org_usage;
    case Role::developer:
      return permission == Permission::read_org || permission == Permission::manage_api_keys ||
             permission == Permission::read_usage;
    case Role::agent: return permission == Permission::read_org;
  }
  return false;
}

}  // namespace canopy::domain
