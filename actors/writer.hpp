// The persistence writer: the only code that writes to the store while the server runs.
//
// A detached actor (its own thread, because fsync blocks). Every durable change arrives as
// `append_atom, RecordPtr` (a request, answered with the record's journal sequence number) or, on the
// hot path, `append_atom, RecordPtr, bytes, token` (the record encoded by the org actor that sends it,
// so the writer's thread only stores it; answered with `committed_atom, token, seq` to the sender:
// no CAF request timer per charge). Either answer comes only after the commit that holds the record
// returned: it is the actors' licence to reply to a client.
//
// Group commit: a commit takes every record that is waiting when it starts. The first record after a
// commit schedules a flush message behind whatever is already in the mailbox, so an idle server
// commits one record with one fsync at once, and a busy one folds thousands of records into each
// fsync without ever waiting on a timer. `commit_window` > 0 adds a fixed delay for more batching.
// At most limits::commit_window_records_max records go in one transaction.
//
// Org state, event-id index rows and usage buckets reach LMDB in checkpoint slices
// (Materializer::flush_due): once one has waited for `checkpoint_interval`, every one waiting is
// written, a bounded slice per commit (limits::checkpoint_*_per_commit_max). They belong to the state
// part of the store (persistence/store.hpp): the writer commits each window's journal-part ops, answers,
// and hands the state part's to the state committer (actors/state_committer.hpp), which commits them
// on its own thread; recovery replays the journal after the checkpoint mark. Shutdown writes
// everything (Materializer::flush) and waits for the committer. After each commit the writer publishes
// how far the journal is (WriterStats::committed_seq), the committer how far the id index is
// (ids_indexed_seq): origin actors answer retries of ids accepted beyond the index themselves.
// `usage_atom, orgs` is a barrier that also writes those orgs' waiting buckets, answered once the
// state part has them, so a usage report read after its answer sees every acknowledged charge.
//
// Event ids older than the idempotency retention are erased by a sweep riding on the same windows, a
// bounded slice per window, its erases in the state part's batch (persistence/id_purge.hpp); an idle
// writer sweeps on its own.
//
// A failed commit is fatal: the process logs and aborts. Nothing unacknowledged is lost by that, and
// after a failed fsync the kernel's page state cannot be trusted (the PostgreSQL fsync lesson).
#pragma once

#include <caf/all.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <vector>

#include "actors/clock.hpp"
#include "actors/index_watchers.hpp"
#include "domain/alerts.hpp"

#include "persistence/store.hpp"

namespace canopy::actors {

// Where committed alerts go (the WebSocket stream). Set and cleared by the server; the writer calls
// it from its thread after each commit that derived alerts.
class AlertListener {
 public:
  void set(std::function<void(const std::vector<domain::Alert>&)> listener) {
    std::lock_guard lock(mutex_);
    listener_ = std::move(listener);
  }
  void deliver(const std::vector<domain::Alert>& alerts) {
    std::lock_guard lock(mutex_);
    if (listener_) listener_(alerts);
  }

 private:
  std::mutex mutex_;
  std::function<void(const std::vector<domain::Alert>&)> listener_;
};

struct WriterConfig {
  std::chrono::microseconds commit_window{0};
  std::chrono::milliseconds checkpoint_interval{1000};
  AlertListener* alerts = nullptr;
  const Clock* clock = nullptr;              // the service's: when event ids expire
  domain::Timestamp id_retention_seconds = 0;  // --idempotency-retention-days
};

// What the writer has done, for /metrics and benchmarks. Written by the writer only.
struct WriterStats {
  std::atomic<std::uint64_t> commits{0};
  std::atomic<std::uint64_t> records{0};
  std::atomic<std::uint64_t> checkpoints{0};  // commits that carried checkpoint slices
  std::atomic<std::uint64_t> commit_micros_total{0};  // time inside the journal part's commits
  std::atomic<std::uint64_t> commit_micros_max{0};
  std::atomic<std::uint64_t> state_commits{0};  // the state part's (actors/state_committer.hpp)
  std::atomic<std::uint64_t> state_commit_micros_total{0};
  std::atomic<std::uint64_t> state_commit_micros_max{0};
  std::atomic<std::uint64_t> event_ids_forgotten{0};  // erased past the idempotency retention
  std::atomic<std::uint64_t> event_id_sweeps{0};      // sweeps of the event-id index finished and committed
  // The journal trim: the audit base's committed seq (stored by the journal trimmer), records erased
  // behind it and the last of them, and whether the base stopped at a record the audit would report.
  std::atomic<std::uint64_t> audit_base_seq{0};
  std::atomic<std::uint64_t> journal_records_trimmed{0};
  std::atomic<std::uint64_t> journal_trimmed_through{0};
  std::atomic<bool> journal_trim_stopped{false};
  // Event-id rows accepted (journaled) and indexed (committed in the state part), ever: the difference
  // waits for a checkpoint. Indexed is stored by the state committer.
  std::atomic<std::uint64_t> event_id_rows_accepted{0};
  std::atomic<std::uint64_t> event_id_rows_indexed{0};
  std::uint64_t event_ids_unindexed() const {
    const std::uint64_t indexed = event_id_rows_indexed.load(std::memory_order_acquire);  // first: never ahead
    const std::uint64_t accepted = event_id_rows_accepted.load(std::memory_order_acquire);
    return accepted > indexed ? accepted - indexed : 0;
  }
  // Progress the org actors rely on (stored with release order after the commit, before anyone hears
  // of it): the last record committed, and the last up to which every accepted event id is in the
  // store's index (stored by the state committer). An origin actor answers for the ids it accepted
  // after that (actors/recent_ids.hpp).
  std::atomic<std::uint64_t> committed_seq{0};
  std::atomic<std::uint64_t> ids_indexed_seq{0};
  // The origin actors waiting for ids_indexed_seq to advance, told by whoever advances it.
  IndexWatchers index_watchers;
};

// REQUIRES: `store` outlives the actor and recovery has run; `last_seq` is the journal's last record.
caf::actor spawn_writer(caf::actor_system& system, persistence::Store& store, std::uint64_t last_seq,
                        WriterConfig config, WriterStats& stats);

}  // namespace canopy::actors
