// The directory's map from org id to its entry (actors/directory.hpp).
//
// Every request walks its org's lineage here, org by org: found through domain::NodeIndex (one probe,
// usually one miss on a 16-byte slot, then the value itself), where std::unordered_map cost a 64-bit
// division and three dependent misses per org (docs/benchmarks.md).
//
// Values live in a deque, in insertion order, so their addresses never change: an org actor keeps its
// entry's for life. Nothing is ever erased (the directory forgets no org).
//
// Thread-safety: none; the directory's lock guards it.
#pragma once

#include <cstddef>
#include <deque>
#include <tuple>
#include <utility>

#include "domain/ids.hpp"
#include "domain/node_index.hpp"

namespace canopy::actors {

template <class Value>
class OrgMap {
 public:
  using Item = std::pair<const domain::OrgId, Value>;

  OrgMap() = default;
  OrgMap(const OrgMap&) = delete;  // the index points into items_
  OrgMap& operator=(const OrgMap&) = delete;

  // Null if `id` has no value.
  const Value* find(domain::OrgId id) const {
    const Item* item = index_.find(id, index_.hash(id));
    return item ? &item->second : nullptr;
  }
  Value* find(domain::OrgId id) {
    Item* item = index_.find(id, index_.hash(id));
    return item ? &item->second : nullptr;
  }

  // The value of `id`, default-constructed first if it has none.
  Value& operator[](domain::OrgId id) {
    const auto h = index_.hash(id);
    if (Item* found = index_.find(id, h)) return found->second;
    Item& item = items_.emplace_back(std::piecewise_construct, std::forward_as_tuple(id), std::forward_as_tuple());
    index_.insert(&item, h);
    return item.second;
  }

  std::size_t size() const { return items_.size(); }
  // Every (id, value), in the order they were first asked for.
  auto begin() { return items_.begin(); }
  auto end() { return items_.end(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::deque<Item> items_;
  domain::NodeIndex<Item, domain::OrgIdMix> index_;
};

}  // namespace canopy::actors
