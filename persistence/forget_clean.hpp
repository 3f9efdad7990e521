// The writer's caches (org snapshots in the Materializer, usage buckets in the UsageRollup) keep
// entries after writing them, clean, so the next record that touches one needs no read. Past a bound
// they forget clean ones; dirty ones wait for their checkpoint and are never forgotten.
#pragma once

#include <cstddef>

namespace canopy::persistence {

// Erases clean entries (`second.dirty_since == 0`) of `cache`, which holds `dirty` dirty ones, until
// at most `keep` clean ones remain.
template <class Map>
void forget_clean(Map& cache, std::size_t dirty, std::size_t keep) {
  std::size_t clean = cache.size() - dirty;
  for (auto it = cache.begin(); it != cache.end() && clean > keep;) {
    if (it->second.dirty_since == 0) {
      it = cache.erase(it);
      --clean;
    } else {
      ++it;
    }
  }
}

}  // namespace canopy::persistence
