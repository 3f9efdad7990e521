// Folds journal records into the tables that answer reads: org state, users, token and email
// indexes, accepted event ids, payment history, usage buckets.
//
// Owned by one thread at a time: the persistence writer while serving, recovery at start, the audit
// offline. Side-table rows are emitted as WriteOps with the record's own commit. Org state is kept in
// a dirty cache and written only at checkpoints (flush), so an org charged ten thousand times between
// checkpoints is written once; recovery replays the journal after the last checkpoint to rebuild the
// rest. Replaying a record twice into side tables rewrites the same rows: harmless (usage buckets,
// which add up, skip records they already counted: usage_rollup.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "domain/records.hpp"
#include "persistence/store.hpp"
#include "persistence/usage_rollup.hpp"

namespace canopy::persistence {

class Materializer {
 public:
  explicit Materializer(const Store& store) : store_(store), usage_(store) {}

  // REQUIRES: records are added in journal order, seq increasing by one; the ops of an earlier flush()
  // are committed before the next add() (org rows are read back from the store after a flush).
  // A record's CycleRolled precedes any charge its org admitted in that cycle (the actors journal the
  // rollover ahead of the charge): a hop whose cycle the org has not reached adds no spend.
  // Returns what makes the record impossible to apply (an org that does not exist, a balance that
  // would go below zero): corruption, and the caller must stop (the writer aborts, recovery refuses to
  // start): side-table rows may already be in `ops` and last_seq() has advanced. nullopt when applied.
  std::optional<std::string> add(std::uint64_t seq, const domain::Record& record, std::vector<WriteOp>& ops);

  // Writes every dirty org and the checkpoint mark into `ops`; the cache is empty afterwards.
  void flush(std::vector<WriteOp>& ops);

  std::size_t dirty_count() const { return dirty_.size(); }
  // The alerts the records added since the last call caused (domain/alerts.hpp), in journal order.
  // Their outbox rows are already in the ops; the writer hands them to the stream once committed.
  std::vector<domain::Alert> take_alerts() { return std::exchange(alerts_, {}); }
  std::uint64_t last_seq() const { return last_seq_; }
  void set_last_seq(std::uint64_t seq) { last_seq_ = seq; }

 private:
  domain::OrgState* load(domain::OrgId id);

  const Store& store_;
  std::unordered_map<domain::OrgId, domain::OrgState> dirty_;
  UsageRollup usage_;
  std::vector<domain::Alert> alerts_;
  std::uint64_t last_seq_ = 0;
};

// Reads an org as of the last checkpoint.
std::optional<domain::OrgState> load_org(const Store& store, domain::OrgId id);

}  // namespace canopy::persistence
