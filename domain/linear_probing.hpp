// Removal from a linear-probing hash table without tombstones: backward-shift deletion (Knuth, TAOCP
// vol. 3, 6.4 Algorithm R). Shared by the tables that erase (actors/recent_ids.hpp,
// domain/node_index.hpp): a tombstone would lengthen every later probe until the next growth.
#pragma once

#include <cstddef>
#include <vector>

namespace canopy::domain {

// Empties `slots[hole]` and pulls each later member of its probe run into the hole when its home slot
// allows, so every remaining member stays reachable from its home. `slots` is a power of two long
// and never full; `full(slot)` tells a used slot, `home(slot)` its home index; Slot{} is empty.
template <class Slot, class Full, class Home>
void erase_from_probe_run(std::vector<Slot>& slots, std::size_t hole, Full full, Home home) {
  const std::size_t mask = slots.size() - 1;
  std::size_t i = hole;
  for (std::size_t j = (i + 1) & mask; full(slots[j]); j = (j + 1) & mask) {
    const std::size_t k = home(slots[j]);
    // Stays put if its home lies cyclically in (i, j]; else moves into the hole at i.
    if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
    slots[i] = slots[j];
    i = j;
  }
  slots[i] = Slot{};
}

}  // namespace canopy::domain
