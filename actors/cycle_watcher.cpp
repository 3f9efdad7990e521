#include "actors/cycle_watcher.hpp"

#include "actors/messages.hpp"
#include "actors/services.hpp"
#include "config/limits.hpp"

namespace canopy::actors {
namespace {

using tick_atom = caf::atom_constant<caf::atom("tick")>;

struct WatcherState {
  Services* services = nullptr;
  domain::Cycle seen = 0;  // 0: not looked yet, so a start in a new cycle catches up too
  static inline const char* name = "canopy.cycles";
};

using Watcher = caf::stateful_actor<WatcherState>;

void look(Watcher* self) {
  auto& st = self->state;
  const domain::Cycle current = domain::cycle_of(st.services->clock.now());
  if (current == st.seen) return;
  st.seen = current;
  for (const OrgPtr& org : st.services->directory.paused_before(current)) {
    if (caf::actor actor = st.services->directory.actor_of(org->id)) {
      caf::anon_send(actor, command_atom::value, CommandRequest{Touch{}, [](CommandResult) {}});
    }
  }
}

caf::behavior watcher(Watcher* self, Services* services) {
  self->state.services = services;
  self->send(self, tick_atom::value);
  return {
      [=](tick_atom) {
        look(self);
        self->delayed_send(self, limits::cycle_watch_interval, tick_atom::value);
      },
  };
}

}  // namespace

caf::actor spawn_cycle_watcher(Services& services) { return services.system.spawn(watcher, &services); }

}  // namespace canopy::actors
