#include "actors/index_watchers.hpp"

#include "actors/messages.hpp"

namespace canopy::actors {

void IndexWatchers::watch(caf::actor org, std::uint64_t seen) {
  {
    std::lock_guard lock(mutex_);
    if (advanced_to_ <= seen) {
      watching_.push_back(std::move(org));
      return;
    }
  }
  caf::anon_send(org, prune_atom::value);  // it advanced between the actor's read and now
}

void IndexWatchers::advanced(std::uint64_t to) {
  std::vector<caf::actor> told;
  {
    std::lock_guard lock(mutex_);
    if (to <= advanced_to_) return;
    advanced_to_ = to;
    told.swap(watching_);
  }
  for (const auto& org : told) caf::anon_send(org, prune_atom::value);
}

}  // namespace canopy::actors
