// The directory's map from org id to its entry (actors/directory.hpp).
//
// std::unordered_map's find was 2.8% of the server's samples under single charges, on the I/O thread
// alone: a lineage walk finds each org of the chain, and each find took a 64-bit division and three
// dependent cache misses (the bucket, the node before, the node: libstdc++ buckets point at the node
// before theirs). Here a find is one multiplication and, with the table at most half full, usually
// one miss on a 16-byte slot, then the value itself.
//
// Values live in a deque, in insertion order, so their addresses never change: an org actor keeps its
// entry's for life. Nothing is ever erased (the directory forgets no org).
//
// Thread-safety: none; the directory's lock guards it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <tuple>
#include <utility>
#include <vector>

#include "domain/ids.hpp"

namespace canopy::actors {

template <class Value>
class OrgMap {
 public:
  using Item = std::pair<const domain::OrgId, Value>;

  OrgMap() : slots_(std::size_t{1} << initial_bits) {}
  OrgMap(const OrgMap&) = delete;  // the slots point into items_
  OrgMap& operator=(const OrgMap&) = delete;

  // Null if `id` has no value.
  const Value* find(domain::OrgId id) const {
    const Item* item = lookup(id);
    return item ? &item->second : nullptr;
  }
  Value* find(domain::OrgId id) {
    Item* item = lookup(id);
    return item ? &item->second : nullptr;
  }

  // The value of `id`, default-constructed first if it has none.
  Value& operator[](domain::OrgId id) {
    if (Value* found = find(id)) return *found;
    if (2 * (items_.size() + 1) > slots_.size()) grow();
    Item& item = items_.emplace_back(std::piecewise_construct, std::forward_as_tuple(id), std::forward_as_tuple());
    place(Slot{id, &item});
    return item.second;
  }

  std::size_t size() const { return items_.size(); }
  // Every (id, value), in the order they were first asked for.
  auto begin() { return items_.begin(); }
  auto end() { return items_.end(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  struct Slot {
    domain::OrgId id = domain::OrgId::none;
    Item* item = nullptr;  // null: empty
  };
  static constexpr unsigned initial_bits = 4;  // 16 slots

  Item* lookup(domain::OrgId id) const {
    for (std::size_t i = home(id);; i = next(i)) {
      const Slot& s = slots_[i];
      if (!s.item || s.id == id) return s.item;
    }
  }

  // Fibonacci hashing: the top bits of the id times 2^64 / phi, so ids in a run spread too.
  std::size_t home(domain::OrgId id) const {
    return static_cast<std::size_t>((domain::raw(id) * 0x9e3779b97f4a7c15ull) >> shift_);
  }
  std::size_t next(std::size_t i) const { return (i + 1) & (slots_.size() - 1); }

  void place(Slot slot) {
    std::size_t i = home(slot.id);
    while (slots_[i].item) i = next(i);
    slots_[i] = slot;
  }

  void grow() {
    slots_.assign(2 * slots_.size(), Slot{});
    --shift_;
    for (Item& item : items_) place(Slot{item.first, &item});
  }

  std::deque<Item> items_;
  std::vector<Slot> slots_;  // a power of two long, at most half full
  unsigned shift_ = 64 - initial_bits;  // 64 - log2(slots_.size())
};

}  // namespace canopy::actors
