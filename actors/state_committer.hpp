// Commits the state part (persistence/store.hpp: org snapshots, the event-id index, usage buckets,
// the checkpoint mark) on a thread of its own, behind the persistence writer's journal commits.
//
// The writer builds each commit's ops as before, commits the journal part's and answers its clients,
// then hands the state part's to this committer (submit). Checkpoint slices, thousands of pages with
// their own fsync, no longer sit in the commits that clients wait for, and their disk time overlaps
// the writer's next commits. The state part is never ahead of the journal: a batch is submitted only
// after the journal commit of the records it reflects returned.
//
// Batches are committed in the order submitted; the committer takes every batch waiting into one
// commit. After each commit it publishes how far the event-id index is (WriterStats::ids_indexed_seq,
// what the origin actors rely on) and what the purge forgot, and tells the writer, when asked, which batch is durable (usage
// reports wait for that). At most limits::state_batches_waiting_max batches wait: past that submit()
// blocks, and the writer falls back to the committer's pace.
//
// A failed commit is fatal, as the writer's is (commit_failed).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "actors/writer.hpp"
#include "persistence/store.hpp"
#include "persistence/write_ops.hpp"

namespace canopy::actors {

// Logs and aborts: after a failed commit or fsync the kernel's page state cannot be trusted (the
// PostgreSQL fsync lesson), and nothing unacknowledged is lost by stopping.
[[noreturn]] void commit_failed(const persistence::Status& status);

class StateCommitter {
 public:
  // Called on the committer's thread once batch `number` (and every batch before it) is committed,
  // for batches submitted with `notify`.
  using Notify = std::function<void(std::uint64_t number)>;

  StateCommitter(persistence::Store& store, WriterStats& stats, Notify notify);
  // Commits every batch still waiting, then stops the thread.
  ~StateCommitter();
  StateCommitter(const StateCommitter&) = delete;
  StateCommitter& operator=(const StateCommitter&) = delete;

  // What a batch makes true once committed, published then (WriterStats).
  struct Progress {
    std::uint64_t ids_indexed_through = 0;  // every event id accepted up to this seq is in the index
    std::uint64_t id_rows_written = 0;      // event-id rows in this batch and every one before it
    std::uint64_t event_ids_forgotten = 0;  // rows the batch erases past the retention
    std::uint64_t event_id_sweeps = 0;      // sweeps of the index finished with it
    bool operator==(const Progress&) const = default;
  };

  // Queues the ops in `ops` (state-part tables only) as the next batch; `ops` is left empty, with
  // buffers of an earlier batch to reuse. Returns the batch's number.
  // Blocks while limits::state_batches_waiting_max batches wait.
  std::uint64_t submit(persistence::WriteOps& ops, const Progress& progress, bool notify);
  // Returns once every batch submitted so far is committed.
  void wait_idle();
  // Returns once batch `number` and every one before it are committed.
  void wait_committed(std::uint64_t number);
  // The number of the last batch submitted (0: none). Only for the thread that submits.
  std::uint64_t submitted() const { return submitted_; }

 private:
  struct Batch {
    persistence::WriteOps ops;
    Progress progress;
    std::uint64_t number = 0;
    bool notify = false;
  };

  void run();
  void commit(std::deque<Batch>& batches);

  persistence::Store& store_;
  WriterStats& stats_;
  const Notify notify_;
  std::mutex mutex_;
  std::condition_variable work_;  // a batch waits, or stopping
  std::condition_variable room_;  // fewer batches wait than the bound
  std::condition_variable idle_;  // a commit finished
  std::deque<Batch> waiting_;
  std::vector<persistence::WriteOps> spare_;  // emptied batches' buffers (a few), for submit() to hand back
  std::uint64_t submitted_ = 0;
  std::uint64_t committed_ = 0;  // the number of the last batch committed
  bool busy_ = false;
  bool stopping_ = false;
  std::thread thread_;  // last: started once everything above is
};

// The store as the writer's materializer reads it. The materializer reads an org or usage bucket
// only when it is not in memory: either never loaded (the store has its last state: writes come only
// from memory) or forgotten past a cache bound after it was written (Materializer::forgets), maybe in
// a batch not committed yet. So once the writer has seen a forget, it names the last batch submitted
// (settle_through), and a read of a state-part table first waits for that batch. Without forgets,
// reads never wait. (The event-id purge, which may read behind, uses the store itself.)
class SettledStore final : public persistence::Store {
 public:
  SettledStore(persistence::Store& store, StateCommitter& committer) : store_(store), committer_(committer) {}

  // Reads of the state part wait until batch `number` is committed. Only for the writer's thread.
  void settle_through(std::uint64_t number) { settle_through_ = number; }

  persistence::Status commit(std::span<const persistence::WriteOp> ops) override { return store_.commit(ops); }
  persistence::Status get(persistence::Table table, std::string_view key, std::string& value) const override {
    settle(persistence::part_of(table));
    return store_.get(table, key, value);
  }
  persistence::Status get_many(persistence::Table table, std::span<const std::string> keys,
                               std::vector<std::optional<std::string>>& values) const override {
    settle(persistence::part_of(table));
    return store_.get_many(table, keys, values);
  }
  persistence::Status scan(persistence::Table table, std::string_view prefix, std::string_view from,
                           const persistence::ScanVisitor& visit) const override {
    settle(persistence::part_of(table));
    return store_.scan(table, prefix, from, visit);
  }
  persistence::Status read(const std::function<persistence::Status(const persistence::Snapshot&)>& read) const override {
    settle(persistence::Part::state);
    return store_.read(read);
  }
  persistence::Status copy_compacted(const std::string& dir) const override { return store_.copy_compacted(dir); }
  std::uint64_t trim_limit() const override { return store_.trim_limit(); }

 private:
  void settle(persistence::Part part) const {
    if (part != persistence::Part::state || settle_through_ <= settled_) return;
    committer_.wait_committed(settle_through_);
    settled_ = settle_through_;
  }

  persistence::Store& store_;
  StateCommitter& committer_;
  std::uint64_t settle_through_ = 0;
  mutable std::uint64_t settled_ = 0;  // a batch known committed: reads up to it need no lock
};

}  // namespace canopy::actors
