// The writer's caches (org snapshots in the Materializer, usage buckets in the UsageRollup) keep
// entries after writing them, clean, so the next record that touches one needs no read. Past a bound
// they forget clean ones; dirty ones wait for their checkpoint and are never forgotten.
#pragma once

#include <cstddef>

namespace canopy::persistence {

// forget_clean's default: nothing else to do for an entry it forgets.
struct ForgetNothingElse {
  template <class Entry>
  void operator()(const Entry&) const {}
};

// Erases clean entries (`second.dirty_since == 0`) of `cache`, which holds `dirty` dirty ones, until
// at most `keep` clean ones remain. `forgetting` sees each entry just before it is erased (an index
// over the entries lets go of it).
template <class Map, class Forgetting = ForgetNothingElse>
void forget_clean(Map& cache, std::size_t dirty, std::size_t keep, Forgetting forgetting = {}) {
  std::size_t clean = cache.size() - dirty;
  for (auto it = cache.begin(); it != cache.end() && clean > keep;) {
    if (it->second.dirty_since == 0) {
      forgetting(*it);
      it = cache.erase(it);
      --clean;
    } else {
      ++it;
    }
  }
}

}  // namespace canopy::persistence
