// The event ids an org actor answers for itself (org_actor.cpp), with what it answered:
// - the ids it is deciding: a retry that arrives while its first sending is still in flight must be
//   told so, not charged twice;
// - the ids it accepted that the store's index does not hold yet (the writer indexes them with a
//   checkpoint: persistence/pending_id_rows.hpp): a retry must get the first answer, the payer.
//
// An open-addressing map from views into the events of the actor's own hops (linear probing,
// backward-shift deletion, no tombstones), each stored with its hash. std::unordered_set allocated a
// node per id and, when a batch was answered, read every id's bytes again to hash it for erase(): a
// cache miss per event, an eighth of the CAF workers' time under batches. Here the caller hashes an
// id once, while its bytes are warm, keeps the hash, and finds it again by hash and address: the
// bytes are read only to tell apart two ids whose hashes are equal.
//
// An org's accepted ids stay a checkpoint interval, so under load its tables are far from cache when
// its next batch comes: every probe's first slot is a miss. A caller walking a batch calls prefetch()
// `prefetch_distance` events ahead, so those misses overlap instead of being waited for one by one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/ids.hpp"
#include "domain/keyed_hash.hpp"
#include "domain/linear_probing.hpp"
#include "domain/org.hpp"  // CANOPY_ASSERT

namespace canopy::actors {

class RecentIds {
 public:
  // Keyed (domain/keyed_hash.hpp): ids are the client's, and crafted ones must not share a probe run.
  static std::uint64_t hash(std::string_view id) { return domain::keyed_hash(id); }

  // How many events ahead of its probe a batch's walk prefetches: enough to cover a miss to memory
  // (~100 ns) with the work of the events between, few enough that the lines are still cached.
  static constexpr std::size_t prefetch_distance = 8;

  // Starts loading the slot where a probe for `h` begins. Only a hint: the table may grow before the
  // probe, and a hint for memory it has freed is harmless.
  void prefetch(std::uint64_t h) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(h)]);
  }

  // Null when the id is not known here; else the payer it was accepted for, OrgId::none while it is
  // still being decided.
  const domain::OrgId* find(std::string_view id, std::uint64_t h) const {
    if (size_ == 0) return nullptr;
    for (std::size_t i = home(h);; i = next(i)) {
      const Slot& s = slots_[i];
      if (!s.data) return nullptr;
      if (s.hash == h && std::string_view(s.data, s.size) == id) return &s.payer;
    }
  }

  // An id, being decided (payer none) or accepted for `payer`. REQUIRES: !find(id, h); `id` stays
  // valid until erased or the map is dropped.
  void insert(std::string_view id, std::uint64_t h, domain::OrgId payer = domain::OrgId::none) {
    CANOPY_ASSERT(id.data() != nullptr);  // null marks an empty slot
    if (2 * (size_ + 1) > slots_.size()) grow();
    std::size_t i = home(h);
    while (slots_[i].data) i = next(i);
    slots_[i] = Slot{h, id.data(), id.size(), payer};
    ++size_;
  }

  // Erases the id inserted from exactly this string (its address), whose hash was `h`.
  // REQUIRES: it is here.
  void erase(const char* data, std::uint64_t h) {
    std::size_t i = home(h);
    while (slots_[i].data != data || slots_[i].hash != h) {
      CANOPY_ASSERT(slots_[i].data != nullptr);  // not here: the caller's bookkeeping is broken
      i = next(i);
    }
    domain::erase_from_probe_run(slots_, i, [](const Slot& s) { return s.data != nullptr; },
                                 [this](const Slot& s) { return home(s.hash); });
    if (--size_ == 0 && slots_.size() > shrink_above) slots_ = {};  // a burst's table is not kept
  }

  std::size_t size() const { return size_; }

 private:
  struct Slot {
    std::uint64_t hash = 0;
    const char* data = nullptr;  // null: empty
    std::size_t size = 0;
    domain::OrgId payer = domain::OrgId::none;  // none: being decided
  };
  static constexpr std::size_t initial_slots = 16;
  static constexpr std::size_t shrink_above = 1024;

  std::size_t home(std::uint64_t h) const { return h & (slots_.size() - 1); }
  std::size_t next(std::size_t i) const { return (i + 1) & (slots_.size() - 1); }

  void grow() {
    std::vector<Slot> old = std::exchange(slots_, std::vector<Slot>(slots_.empty() ? initial_slots : 2 * slots_.size()));
    for (const Slot& s : old) {
      if (!s.data) continue;
      std::size_t i = home(s.hash);
      while (slots_[i].data) i = next(i);
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;  // a power of two long, at most half full
  std::size_t size_ = 0;
};

}  // namespace canopy::actors
