// Counts charges and credits into the usage buckets (domain/usage.hpp), as WriteOps in the same
// commit as the journal record that caused them.
//
// Buckets are read-modify-write, so unlike the other side tables a replayed record would count twice;
// each bucket remembers the last journal seq it counted and skips records at or before it. A cache
// of the buckets touched since the last checkpoint spares the store a read per charge (the writer is
// the only one writing them, so the cache is never stale).
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "domain/records.hpp"
#include "domain/usage.hpp"
#include "persistence/store.hpp"
#include "persistence/write_ops.hpp"

namespace canopy::persistence {

class UsageRollup {
 public:
  explicit UsageRollup(const Store& store) : store_(store) {}

  // REQUIRES: the same order and commit discipline as Materializer::add.
  void add(std::uint64_t seq, const domain::Record& record, WriteOps& ops);
  // Forgets the cache (at checkpoints, to bound it); the store has everything.
  void clear() { cache_.clear(); }
  std::size_t cached() const { return cache_.size(); }

 private:
  void bump(std::string key, std::uint64_t seq, std::uint64_t count, std::uint64_t quantity, domain::Micros micros,
            WriteOps& ops);
  void credit(std::uint64_t seq, domain::OrgId org, domain::Timestamp at, domain::Micros amount, WriteOps& ops);

  const Store& store_;
  std::unordered_map<std::string, domain::Bucket> cache_;
};

}  // namespace canopy::persistence
