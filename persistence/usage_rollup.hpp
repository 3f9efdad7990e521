// Counts charges and credits into the usage buckets (domain/usage.hpp).
//
// Buckets are read-modify-write, so unlike the other side tables a replayed record would count twice;
// each bucket remembers the last journal seq it counted and skips records at or before it.
//
// Counted in memory and written with the checkpoints, like org snapshots (materializer.hpp): the
// three buckets a single charge touches sat in a random leaf of the usage table, written and fsynced
// in every charge's commit; an org charged a hundred times an interval now writes them once. A
// report must see every acknowledged charge, so before it reads, the writer writes the dirty buckets
// of the orgs it covers (write_org) in a commit of their own. The checkpoint mark stays below the
// oldest dirty bucket's first record (low_water), so recovery counts again what a crash lost.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/keyed_hash.hpp"
#include "domain/node_index.hpp"
#include "domain/records.hpp"
#include "domain/usage.hpp"
#include "persistence/store.hpp"
#include "persistence/write_ops.hpp"

namespace canopy::persistence {

class UsageRollup {
 public:
  using Clock = std::chrono::steady_clock;

  explicit UsageRollup(const Store& store) : store_(store) {}

  // Counts `record`, journaled as `seq` at `now`, into the buckets in memory.
  // REQUIRES: the same order and commit discipline as Materializer::add.
  void add(std::uint64_t seq, const domain::Record& record, Clock::time_point now);

  // True when a checkpoint of buckets is in progress or some bucket has been dirty since `cutoff`.
  bool due(Clock::time_point cutoff);
  // Once the bucket dirty longest is due, writes every bucket dirty then, in key order, a slice per
  // call: `max_rows`, then the rest of the last org's (a slice never splits an org's buckets, so a
  // record is in all of its buckets or none). Returns how many it wrote.
  std::size_t write_due(WriteOps& ops, Clock::time_point cutoff, std::size_t max_rows);
  // Writes every dirty bucket of `org` (a report of it is about to be read).
  void write_org(domain::OrgId org, WriteOps& ops);
  // Writes every dirty bucket.
  void write_all(WriteOps& ops);
  // Every stored bucket holds every record up to this seq (of those up to `last_seq`).
  std::uint64_t low_water(std::uint64_t last_seq);
  // Forgets clean buckets once more than limits::usage_rollup_cache_max clean ones are cached (the
  // store has them); dirty ones are never forgotten.
  void trim();

  std::size_t dirty() const { return dirty_; }
  // How many times trim() has forgotten buckets: a bucket forgotten may be read back from the store,
  // which must have it by then (actors/state_committer.hpp, SettledStore).
  std::uint64_t forgets() const { return forgets_; }

 private:
  struct Cached {
    domain::Bucket bucket;
    std::uint64_t dirty_since = 0;  // the first record counted since it was written; 0 while clean
    Clock::time_point dirtied_at{};
  };
  using Map = std::map<std::string, Cached, std::less<>>;  // in key order: an org's buckets are a range
  using Node = Map::value_type;

  // Counts into the bucket of `org`, `bucket`, `period` and event `type` (empty: a bucket of all types).
  void bump(std::uint64_t org, domain::BucketKind bucket, std::int32_t period, std::string_view type, std::uint64_t seq,
            std::uint64_t count, std::uint64_t quantity, domain::Micros micros);
  void credit(std::uint64_t seq, domain::OrgId org, domain::Timestamp at, domain::Micros amount);
  void write(Node& node, WriteOps& ops);

  const Store& store_;
  Clock::time_point now_{};
  Map cache_;
  domain::NodeIndex<Node, domain::KeyedHash> index_;  // every node of cache_, found by key without walking the tree
  std::string key_;        // bump()'s key, built in place (its buffer kept: a hit allocates nothing)
  std::size_t dirty_ = 0;
  // Dirty buckets in the order they became dirty, with the seq that made them so (stale pairs, of
  // buckets written and maybe dirtied again since, are skipped): the low-water mark's front.
  std::deque<std::pair<Node*, std::uint64_t>> dirty_order_;
  // The checkpoint being written: the buckets dirty when it began, in key order.
  std::vector<Node*> epoch_;
  std::size_t epoch_next_ = 0;
  std::uint64_t forgets_ = 0;
};

}  // namespace canopy::persistence
