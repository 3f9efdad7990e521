// Starts a new billing cycle on time where someone is waiting for it.
//
// Cycles roll over lazily: an org writes its rollover on its first message of the new cycle (and
// reads show the new cycle before that: view_at). That leaves one thing late: an org paused at its
// limit is resumed by the new cycle, and the `org.resumed` alert (derived from the journaled rollover)
// would wait for the org's next message, which a client holding back on `org.paused` never sends. So
// this actor, once per limits::cycle_watch_interval, notices a new cycle and touches every org that is
// paused in an earlier one; their actors roll over, journal it, and the alert follows.
#pragma once

#include <caf/all.hpp>

namespace canopy::actors {

class Services;

caf::actor spawn_cycle_watcher(Services& services);

}  // namespace canopy::actors
