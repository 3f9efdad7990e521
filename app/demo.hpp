// `canopy serve --demo`: seeds an agency with a few client sub-orgs (once, on an empty data folder) and
// keeps a trickle of live usage flowing, so the console and dashboards have something to show.
//
// Everything goes through the same actors and journal as real traffic; the demo owner's token is
// printed so a person can sign in as the agency admin.
#pragma once

#include "actors/services.hpp"

namespace canopy::app {

// Seeds (if the store has no org yet) and starts the trickle. Returns a line to print, or an error.
std::string start_demo(actors::Services& services);

}  // namespace canopy::app
