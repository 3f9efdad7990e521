// The org actors waiting for the event-id index to catch up with ids they accepted, told when it does.
//
// An origin actor holds the ids it accepted until the index has them (org_actor.cpp, recent_ids.hpp),
// and only it knows when it can let go: the index advances on the state committer's thread
// (state_committer.hpp), whole checkpoints at a time. Each waiting actor is told once, after the next
// advance, and prunes then; one still holding ids waits again. A timer per waiting org did the same
// late or often: at four checkpoint intervals, orgs charged now and then held ~20 s of batches' events
// (5 million, ~4 GB at 900,000 events a second against ~1 million ids actually unindexed).
//
// Thread-safety: watch() from any actor, advanced() from whoever publishes WriterStats::ids_indexed_seq.
// The mutex guards a list, held for a push or a swap; no charge ever waits on it.
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <mutex>
#include <vector>

namespace canopy::actors {

class IndexWatchers {
 public:
  // `org` gets `prune_atom` once the index advances past `seen` (the ids_indexed_seq the actor last
  // read): at once if it already has, since the actor read it.
  void watch(caf::actor org, std::uint64_t seen);
  // The index now holds every id up to record `to`: tells every watcher, and forgets them.
  void advanced(std::uint64_t to);

 private:
  std::mutex mutex_;
  std::uint64_t advanced_to_ = 0;
  std::vector<caf::actor> watching_;
};

}  // namespace canopy::actors
