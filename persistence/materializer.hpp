// Folds journal records into the tables that answer reads: org state, users, token and email
// indexes, accepted event ids, payment history, usage buckets.
//
// Owned by one thread at a time: the persistence writer while serving, recovery at start, the audit
// offline. Side-table rows are emitted as WriteOps with the record's own commit, except event-id rows
// and usage buckets, which wait for a checkpoint (pending_id_rows.hpp, usage_rollup.hpp). Org state is
// kept in a cache and written later, so an org charged ten thousand times in between is written once;
// written orgs stay cached, clean, up to limits::materializer_orgs_cached_max.
//
// Checkpoints are incremental: once an org has been dirty for the checkpoint interval, every org
// dirty then is written in key order, at most limits::checkpoint_orgs_per_commit_max per commit, so no commit
// ever carries thousands of snapshots (a whole checkpoint in one commit stalled every charge behind
// it for 20-30 ms); event-id rows and usage buckets the same way, on the same clock. Each snapshot
// records the journal seq it is as of, and the checkpoint mark is the low-water mark: every record at
// or before it is in every stored snapshot and bucket it touches, and its event ids are in the index. Recovery
// replays the journal after the mark and applies a record to an org only if the org's snapshot is
// older than it. Replaying a record twice into side tables rewrites the same rows: harmless (usage
// buckets, which add up, skip records they already counted: usage_rollup.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "domain/node_index.hpp"
#include "domain/records.hpp"
#include "persistence/pending_id_rows.hpp"
#include "persistence/store.hpp"
#include "persistence/usage_rollup.hpp"
#include "persistence/write_ops.hpp"

namespace canopy::persistence {

class Materializer {
 public:
  explicit Materializer(const Store& store) : store_(store), usage_(store) {}

  // REQUIRES: records are added in journal order, seq increasing by one; a read of an org or bucket
  // not in memory sees the ops of every earlier flush(), flush_due() and write_usage_of() committed
  // (the writer reads through SettledStore, actors/state_committer.hpp, once forgets() has moved).
  // A record's CycleRolled precedes any charge its org admitted in that cycle (the actors journal the
  // rollover ahead of the charge): a hop whose cycle the org has not reached adds no spend.
  // Returns what makes the record impossible to apply (an org that does not exist, a balance that
  // would go below zero): corruption, and the caller must stop (the writer aborts, recovery refuses to
  // start): side-table rows may already be in `ops` and last_seq() has advanced. nullopt when applied.
  std::optional<std::string> add(std::uint64_t seq, const domain::Record& record, WriteOps& ops);

  // Writes every dirty org, event-id row and usage bucket and the checkpoint mark into `ops`; the org
  // cache is empty afterwards.
  void flush(WriteOps& ops);
  // Writes the next slice (at most `max_orgs`, in key order) of the checkpoint in progress, which
  // starts once some org has been dirty since `cutoff` or earlier and then takes every dirty org; the
  // next slices of event-id rows and usage buckets the same way; and the checkpoint mark if it moved.
  // Returns how many orgs and rows it wrote.
  std::size_t flush_due(WriteOps& ops, std::chrono::steady_clock::time_point cutoff, std::size_t max_orgs);
  // True when a checkpoint is in progress or some org has been dirty since `cutoff` or earlier.
  bool any_due(std::chrono::steady_clock::time_point cutoff);
  // The time add() stamps on orgs it makes dirty (the writer sets it once per commit).
  void set_now(std::chrono::steady_clock::time_point now) { now_ = now; }

  std::size_t dirty_count() const { return dirty_; }
  std::size_t cached_count() const { return entries_.size(); }
  // The alerts the records added since the last call caused (domain/alerts.hpp), in journal order.
  // Their outbox rows are already in the ops; the writer hands them to the stream once committed.
  std::vector<domain::Alert> take_alerts() { return std::exchange(alerts_, {}); }
  std::uint64_t last_seq() const { return last_seq_; }
  // Every event id accepted by a record up to this seq is in the store's index once the ops written
  // so far are committed; later ones wait for a checkpoint (pending_id_rows.hpp).
  std::uint64_t ids_indexed_through() const { return ids_.indexed_through(last_seq_); }
  std::size_t id_rows_pending() const { return ids_.size(); }
  // Event-id rows written into ops so far, ever (indexed once those ops are committed).
  std::uint64_t id_rows_written() const { return ids_.written_total(); }
  // Writes the usage buckets of `org` that wait for a checkpoint, and the mark if it moved: a report
  // of the org reads the store once these ops are committed.
  void write_usage_of(domain::OrgId org, WriteOps& ops);
  // The same for every org.
  void write_all_usage(WriteOps& ops);
  std::size_t usage_buckets_dirty() const { return usage_.dirty(); }
  // How many times written orgs or usage buckets were dropped from memory (past their cache bounds,
  // or all of them by flush()). Until the ops that wrote them are committed, reading them back from
  // the store would find an older state: the writer makes such reads wait (SettledStore).
  std::uint64_t forgets() const { return forgets_ + usage_.forgets(); }
  void set_last_seq(std::uint64_t seq) { last_seq_ = seq; }
  // Called on another thread once a checkpoint's event ids are sorted and due (PendingIdRows).
  // Before the first checkpoint.
  void set_ids_sorted_listener(std::function<void()> listener) { ids_.set_sorted_listener(std::move(listener)); }

 private:
  // An org in memory: its state, the seq of its stored snapshot, and since when it differs from it.
  struct Entry {
    domain::OrgState org;
    std::uint64_t as_of = 0;       // the stored snapshot's seq: records up to it are already in `org`
    std::uint64_t dirty_since = 0;  // first seq applied since the snapshot; 0 while clean
    std::chrono::steady_clock::time_point dirtied_at{};
  };

  using EntryNode = std::unordered_map<domain::OrgId, Entry>::value_type;

  Entry* load(domain::OrgId id);
  // REQUIRES: `id` is not in entries_.
  Entry& insert(domain::OrgId id, std::uint64_t hash, Entry entry);
  bool oldest_due(std::chrono::steady_clock::time_point cutoff);
  void mark_dirty(domain::OrgId id, Entry& entry, std::uint64_t seq);
  void write(domain::OrgId id, Entry& entry, WriteOps& ops);
  // The checkpoint mark: every stored snapshot holds every record up to it.
  std::uint64_t low_water_mark();
  // The same for the event-id rows and usage buckets alone.
  std::uint64_t side_rows_mark();
  void put_mark(WriteOps& ops);

  const Store& store_;
  // Orgs read from the store or written since (clean ones dropped past limits::materializer_orgs_cached_max).
  std::unordered_map<domain::OrgId, Entry> entries_;
  domain::NodeIndex<EntryNode, domain::OrgIdMix> index_;  // every entry, found in one probe
  // The checkpoint being written a slice per commit: the orgs dirty when it began, in key order.
  std::vector<domain::OrgId> epoch_;
  std::size_t epoch_next_ = 0;
  std::size_t dirty_ = 0;
  // Dirty orgs in the order they became dirty, with the seq that made them so (stale pairs, of orgs
  // written and dirtied again since, are skipped).
  std::deque<std::pair<domain::OrgId, std::uint64_t>> dirty_order_;
  std::uint64_t mark_written_ = 0;
  std::chrono::steady_clock::time_point now_{};
  UsageRollup usage_;
  PendingIdRows ids_;
  std::vector<domain::Alert> alerts_;
  std::uint64_t last_seq_ = 0;
  std::uint64_t forgets_ = 0;
};

// Reads an org's stored snapshot (and the seq it is as of, if asked).
std::optional<domain::OrgState> load_org(const Store& store, domain::OrgId id, std::uint64_t* as_of = nullptr);

}  // namespace canopy::persistence
