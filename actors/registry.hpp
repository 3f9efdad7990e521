// The registry: creates users and root organizations, one at a time.
//
// One actor serializes what must be unique across tenants: a user's email, and which org gets each
// owner's free allowance (the first root they own). Everything inside an org belongs to its org actor.
//
// Messages: user_atom + CreateUser, root_atom + CreateRoot; email_atom + reserve_atom + email (a
// request) reserves an email for a user another actor is about to create, answering false if it is
// taken or reserved; email_atom + release_atom + email (one-way) releases it once that user is published.
#pragma once

#include <caf/all.hpp>

namespace canopy::actors {

class Services;

caf::actor spawn_registry(Services& services);

}  // namespace canopy::actors
