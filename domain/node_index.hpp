// A hash index over the nodes of a node-based container (std::map, std::unordered_map, a std::deque
// only appended to: their elements never move), for a find with one probe where the container's own
// costs several dependent cache misses.
//
// - The directory's orgs (actors/org_map.hpp): every request walks its org's lineage, and
//   std::unordered_map's find was a 64-bit division and three dependent misses (the bucket, the node
//   before, the node) per org: 2.8% of the server's samples under single charges.
// - The persistence writer's orgs (persistence/materializer.hpp), the same map for the same walk
//   per record: 2.2%.
// - The writer's usage buckets (persistence/usage_rollup.hpp), a std::map kept in key order because
//   an org's buckets are a range (a report writes them all) and a checkpoint writes them sorted. Every
//   single charge finds three among up to ~100,000, ~17 levels of that tree, a cache miss and a key
//   comparison each: 3.7%.
// Here a find is a hash, usually one miss on a 16-byte slot, and the node itself, which the caller
// reads anyway.
//
// Open addressing with linear probing and backward-shift deletion (linear_probing.hpp), at most half
// full. The caller's Hash must mix every bit of the key into the low bits, which pick the slot; keys
// a client names (a bucket's holds the event type) are hashed with the process's secret key
// (keyed_hash.hpp), org ids with OrgIdMix below.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "domain/ids.hpp"
#include "domain/linear_probing.hpp"
#include "domain/org.hpp"  // CANOPY_ASSERT

namespace canopy::domain {

// Node: a map's value_type, whose `first` is the key. Hash: the key (or a view of it) to 64 bits.
template <class Node, class Hash>
class NodeIndex {
 public:
  NodeIndex() = default;
  NodeIndex(const NodeIndex&) = delete;  // its slots point at one map's nodes
  NodeIndex& operator=(const NodeIndex&) = delete;

  template <class Key>
  static std::uint64_t hash(const Key& key) {
    return static_cast<std::uint64_t>(Hash{}(key));
  }

  // The node whose key equals `key` (hashed to `h`), or null.
  template <class Key>
  Node* find(const Key& key, std::uint64_t h) const {
    if (size_ == 0) return nullptr;
    for (std::size_t i = home(h);; i = next(i)) {
      const Slot& s = slots_[i];
      if (!s.node) return nullptr;
      if (s.hash == h && s.node->first == key) return s.node;
    }
  }

  // REQUIRES: no node with `node`'s key is here; `h` is its key's hash; the node outlives its entry.
  void insert(Node* node, std::uint64_t h) {
    CANOPY_ASSERT(node != nullptr);  // null marks an empty slot
    if (2 * (size_ + 1) > slots_.size()) grow();
    place(Slot{h, node});
    ++size_;
  }

  // REQUIRES: `node` is here (the map is about to drop it).
  void erase(const Node* node) {
    CANOPY_ASSERT(size_ != 0);
    std::size_t i = home(hash(node->first));
    while (slots_[i].node != node) {
      CANOPY_ASSERT(slots_[i].node != nullptr);  // not here: the caller's bookkeeping is broken
      i = next(i);
    }
    erase_from_probe_run(slots_, i, [](const Slot& s) { return s.node != nullptr; },
                                 [this](const Slot& s) { return home(s.hash); });
    --size_;
  }

  std::size_t size() const { return size_; }
  void clear() {
    slots_ = {};
    size_ = 0;
  }

 private:
  struct Slot {
    std::uint64_t hash = 0;
    Node* node = nullptr;  // null: empty
  };
  static constexpr std::size_t initial_slots = 16;

  std::size_t home(std::uint64_t h) const { return h & (slots_.size() - 1); }
  std::size_t next(std::size_t i) const { return (i + 1) & (slots_.size() - 1); }

  void place(Slot slot) {
    std::size_t i = home(slot.hash);
    while (slots_[i].node) i = next(i);
    slots_[i] = slot;
  }

  void grow() {
    std::vector<Slot> old = std::exchange(slots_, std::vector<Slot>(slots_.empty() ? initial_slots : 2 * slots_.size()));
    for (const Slot& s : old) {
      if (s.node) place(s);
    }
  }

  std::vector<Slot> slots_;  // a power of two long, at most half full
  std::size_t size_ = 0;
};

// Org ids are the service's, not a client's, so no secret key: MurmurHash3's 64-bit finalizer mixes
// every bit of the id into the low bits.
struct OrgIdMix {
  std::uint64_t operator()(OrgId id) const {
    std::uint64_t h = raw(id);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
  }
};

}  // namespace canopy::domain
