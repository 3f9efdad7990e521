// The registry: creates users and root organizations, one at a time.
//
// One actor serializes what must be unique across tenants: a user's email, and which org gets each
// owner's free allowance (the first root they own). Everything inside an org belongs to its org actor.
//
// Messages: user_atom + CreateUser, root_atom + CreateRoot.
#pragma once

#include <caf/all.hpp>

namespace canopy::actors {

class Services;

caf::actor spawn_registry(Services& services);

}  // namespace canopy::actors
