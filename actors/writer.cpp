#include "actors/writer.hpp"

#include <deque>
#include <utility>

#include "actors/journal_trimmer.hpp"
#include "actors/messages.hpp"
#include "actors/state_committer.hpp"
#include "config/limits.hpp"
#include "persistence/codec.hpp"
#include "persistence/id_purge.hpp"
#include "persistence/journal_trim.hpp"
#include "persistence/keys.hpp"
#include "persistence/materializer.hpp"

namespace canopy::actors {
namespace {

using persistence::Table;
using persistence::WriteOp;

struct Waiting {
  RecordPtr record{};  // null for a meta write or a sync barrier
  std::string encoded{};  // the record's bytes when its sender encoded it (empty: encoded here)
  WriteOp meta{};
  std::vector<domain::OrgId> usage_of{};  // orgs whose usage buckets a report is about to read
  bool usage = false;                     // answered once the state part holds them
  caf::response_promise promise{};  // a request's answer, or
  caf::actor sender{};              // where `committed_atom, token, seq` goes
  std::uint64_t token = 0;
};

struct WriterState {
  persistence::Store* store = nullptr;
  // Destroyed after everything that reads through it: its destructor commits what still waits.
  std::unique_ptr<StateCommitter> committer;
  std::unique_ptr<SettledStore> settled;  // the store as the materializer reads it
  std::unique_ptr<persistence::Materializer> materializer;
  std::unique_ptr<persistence::IdPurge> id_purge;
  std::unique_ptr<persistence::JournalTrim> trim;  // erases what the trimmer's audit base holds
  std::unique_ptr<JournalTrimmer> trimmer;
  WriterConfig config;
  WriterStats* stats = nullptr;
  std::uint64_t last_seq = 0;
  std::vector<Waiting> waiting;
  bool flush_scheduled = false;
  persistence::WriteOps ops;        // reused across commits, buffers and all
  persistence::WriteOps state_ops;  // the state part's of them, handed to the committer
  StateCommitter::Progress submitted;  // the progress of the last batch submitted
  std::uint64_t forgets_seen = 0;     // Materializer::forgets() when last looked at
  // Usage barriers, each answered once the committer has committed its batch.
  std::deque<std::pair<std::uint64_t, caf::response_promise>> usage_waiters;
  static inline const char* name = "canopy.writer";
};

using WriterActor = caf::stateful_actor<WriterState>;

// What the org actors read once a commit is durable, before any of its records is answered.
void publish_progress(WriterState& st) {
  st.stats->event_id_rows_accepted.store(st.materializer->id_rows_written() + st.materializer->id_rows_pending(),
                                        std::memory_order_release);
  st.stats->committed_seq.store(st.last_seq, std::memory_order_release);
}

// Sweeps of the event-id index whose erases the state committer has committed (IdPurge waits for
// them before it starts another sweep).
std::uint64_t sweeps_committed(const WriterState& st) {
  return st.stats->event_id_sweeps.load(std::memory_order_acquire);
}

// Commits up to commit_window_records_max waiting records (and a checkpoint slice when one is due) in
// the journal part, answers each sender with its sequence number, then hands the state part's ops to
// the committer.
void commit(WriterActor* self, bool force_checkpoint) {
  auto& st = self->state;
  st.ops.clear();
  st.materializer->set_now(std::chrono::steady_clock::now());
  // Expired ids first: were a record of this commit to accept one of those ids anew, its put comes
  // after the erase and wins (a commit applies ops on one key in order).
  const std::size_t forgotten = st.id_purge->step(st.config.clock->now(), sweeps_committed(st),
                                                  limits::id_purge_rows_per_commit, st.ops);
  const std::size_t trimmed = st.trim->step(st.stats->audit_base_seq.load(std::memory_order_acquire), st.ops);
  const std::size_t n = std::min(st.waiting.size(), limits::commit_window_records_max);
  std::vector<std::uint64_t> seqs(n, 0);
  bool notify = false;  // a usage barrier waits for this commit's state part
  for (std::size_t i = 0; i < n; ++i) {
    auto& w = st.waiting[i];
    if (!w.record) {
      if (!w.meta.key.empty()) st.ops.push_back(w.meta);
      notify = notify || w.usage;
      for (const auto org : w.usage_of) st.materializer->write_usage_of(org, st.ops);
      continue;
    }
    const std::uint64_t seq = ++st.last_seq;
    seqs[i] = seq;
    WriteOp& journal = st.ops.add(Table::journal);
    journal.key = persistence::u64_key(seq);
    journal.value = w.encoded.empty() ? persistence::encode(*w.record) : std::move(w.encoded);
    // Actors only journal records that apply: anything else is a bug that must not reach disk.
    if (auto problem = st.materializer->add(seq, *w.record, st.ops)) domain::invariant_failed(problem->c_str(), __FILE__, __LINE__);
  }
  const auto now = std::chrono::steady_clock::now();
  if (force_checkpoint) {
    st.materializer->flush(st.ops);
    st.stats->checkpoints.fetch_add(1, std::memory_order_relaxed);
  } else if (st.materializer->flush_due(st.ops, now - st.config.checkpoint_interval,
                                        limits::checkpoint_orgs_per_commit_max) > 0) {
    st.stats->checkpoints.fetch_add(1, std::memory_order_relaxed);
  }
  st.ops.move_part(persistence::Part::state, st.state_ops);
  if (!st.ops.empty()) {
    const auto started = std::chrono::steady_clock::now();
    if (auto status = st.store->commit(st.ops.span()); !status.ok()) commit_failed(status);
    const auto micros = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count());
    auto& stats = *st.stats;
    stats.commits.fetch_add(1, std::memory_order_relaxed);
    stats.records.fetch_add(n, std::memory_order_relaxed);
    stats.commit_micros_total.fetch_add(micros, std::memory_order_relaxed);
    if (micros > stats.commit_micros_max.load(std::memory_order_relaxed)) {
      stats.commit_micros_max.store(micros, std::memory_order_relaxed);
    }
  }
  publish_progress(st);
  if (trimmed > 0) {
    st.stats->journal_records_trimmed.fetch_add(trimmed, std::memory_order_relaxed);
    st.stats->journal_trimmed_through.store(st.trim->erased_through(), std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i < n; ++i) {
    auto& w = st.waiting[i];
    if (w.sender) {
      caf::anon_send(w.sender, committed_atom::value, w.token, seqs[i]);
    } else if (!w.usage) {
      w.promise.deliver(seqs[i]);
    }
  }
  // The state part after the journal part's commit returned, never before: it must not get ahead.
  const StateCommitter::Progress progress{st.materializer->ids_indexed_through(), st.materializer->id_rows_written(),
                                          forgotten, st.id_purge->sweeps_finished()};
  if (!st.state_ops.empty() || notify || progress != st.submitted) {
    const std::uint64_t batch = st.committer->submit(st.state_ops, progress, notify);
    st.submitted = progress;
    st.submitted.event_ids_forgotten = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (st.waiting[i].usage) st.usage_waiters.emplace_back(batch, std::move(st.waiting[i].promise));
    }
  }
  // Orgs or buckets forgotten: whatever wrote them is in the batches submitted so far.
  if (const std::uint64_t forgets = st.materializer->forgets(); forgets != st.forgets_seen) {
    st.forgets_seen = forgets;
    st.settled->settle_through(st.committer->submitted());
  }
  st.waiting.erase(st.waiting.begin(), st.waiting.begin() + static_cast<std::ptrdiff_t>(n));
  if (auto alerts = st.materializer->take_alerts(); !alerts.empty() && st.config.alerts) st.config.alerts->deliver(alerts);
}

// With nothing waiting, commits one slice of whatever checkpoint work is due; returns whether more is.
bool checkpoint_slice_when_idle(WriterActor* self) {
  auto& st = self->state;
  const auto due = [&] {
    const auto now = std::chrono::steady_clock::now();
    return st.materializer->any_due(now - st.config.checkpoint_interval) ||
           st.id_purge->due(st.config.clock->now(), sweeps_committed(st)) ||
           st.trim->due(st.stats->audit_base_seq.load(std::memory_order_acquire));
  };
  if (!st.waiting.empty() || !due()) return false;
  commit(self, false);
  return due();
}

void schedule_flush(WriterActor* self) {
  auto& st = self->state;
  if (st.flush_scheduled) return;
  st.flush_scheduled = true;
  if (st.config.commit_window.count() > 0) {
    self->delayed_send(self, st.config.commit_window, flush_atom::value);
  } else {
    self->send(self, flush_atom::value);
  }
}

void push(WriterActor* self, Waiting waiting) {
  self->state.waiting.push_back(std::move(waiting));
  if (self->state.waiting.size() >= limits::commit_window_records_max) commit(self, false);
  if (!self->state.waiting.empty()) schedule_flush(self);
}

// As push(), answered through a response promise (the request form).
caf::result<std::uint64_t> enqueue(WriterActor* self, Waiting waiting) {
  waiting.promise = self->make_response_promise();
  push(self, std::move(waiting));
  return caf::delegated<std::uint64_t>{};
}

caf::behavior writer(WriterActor* self, persistence::Store* store, std::uint64_t last_seq, WriterConfig config,
                     WriterStats* stats) {
  auto& st = self->state;
  st.stats = stats;
  st.store = store;
  st.committer = std::make_unique<StateCommitter>(
      *store, *stats, [writer = caf::actor_cast<caf::weak_actor_ptr>(self)](std::uint64_t batch) {
        if (auto alive = caf::actor_cast<caf::actor>(writer.lock())) caf::anon_send(alive, state_done_atom::value, batch);
      });
  st.settled = std::make_unique<SettledStore>(*store, *st.committer);
  st.materializer = std::make_unique<persistence::Materializer>(*st.settled);
  st.materializer->set_last_seq(last_seq);
  st.materializer->set_ids_sorted_listener([writer = caf::actor_cast<caf::weak_actor_ptr>(self)] {
    if (auto alive = caf::actor_cast<caf::actor>(writer.lock())) caf::anon_send(alive, ids_sorted_atom::value);
  });
  CANOPY_ASSERT(config.clock != nullptr && config.id_retention_seconds > 0);
  st.id_purge = std::make_unique<persistence::IdPurge>(*store, config.id_retention_seconds, limits::id_purge_interval_seconds);
  persistence::Status status;
  st.trim = std::make_unique<persistence::JournalTrim>(*store, status);
  if (!status.ok()) commit_failed(status);
  stats->journal_trimmed_through.store(st.trim->erased_through(), std::memory_order_relaxed);
  st.trimmer = std::make_unique<JournalTrimmer>(*store, *stats, config.checkpoint_interval);
  st.config = config;
  st.last_seq = last_seq;
  publish_progress(st);
  st.submitted.ids_indexed_through = st.materializer->ids_indexed_through();  // recovery indexed every id it replayed
  stats->ids_indexed_seq.store(st.submitted.ids_indexed_through, std::memory_order_release);
  self->delayed_send(self, config.checkpoint_interval, checkpoint_atom::value);
  return {
      [=](append_atom, RecordPtr record) -> caf::result<std::uint64_t> {
        CANOPY_ASSERT(record != nullptr);
        return enqueue(self, Waiting{.record = std::move(record)});
      },
      // The org actors' form: encoded by the sender, answered with `committed_atom, token, seq`.
      [=](append_atom, RecordPtr& record, std::string& encoded, std::uint64_t token) {
        CANOPY_ASSERT(record != nullptr && !encoded.empty());
        push(self, Waiting{.record = std::move(record),
                           .encoded = std::move(encoded),
                           .sender = caf::actor_cast<caf::actor>(self->current_sender()),
                           .token = token});
      },
      [=](meta_atom, std::string key, std::string value) -> caf::result<std::uint64_t> {
        return enqueue(self, Waiting{.meta = WriteOp{Table::meta, std::move(key), std::move(value)}});
      },
      // A barrier: answered once everything sent before it is committed.
      [=](barrier_atom) -> caf::result<std::uint64_t> { return enqueue(self, Waiting{}); },
      [=](barrier_atom, std::uint64_t token) {
        push(self, Waiting{.sender = caf::actor_cast<caf::actor>(self->current_sender()), .token = token});
      },
      // A barrier that also writes the usage buckets of `orgs` counted since their last checkpoint:
      // once answered, the store holds every acknowledged charge's usage for them.
      [=](usage_atom, std::vector<domain::OrgId> orgs) -> caf::result<std::uint64_t> {
        return enqueue(self, Waiting{.usage_of = std::move(orgs), .usage = true});
      },
      // The state committer has committed batch `batch` and every one before it.
      [=](state_done_atom, std::uint64_t batch) {
        auto& waiters = self->state.usage_waiters;
        while (!waiters.empty() && waiters.front().first <= batch) {
          waiters.front().second.deliver(std::uint64_t{0});
          waiters.pop_front();
        }
      },
      // The same with a checkpoint (shutdown).
      [=](sync_atom) -> caf::result<std::uint64_t> {
        auto promise = self->make_response_promise();
        while (!self->state.waiting.empty()) commit(self, false);
        commit(self, true);
        self->state.committer->wait_idle();
        promise.deliver(self->state.last_seq);
        return caf::delegated<std::uint64_t>{};
      },
      [=](flush_atom) {
        self->state.flush_scheduled = false;
        while (!self->state.waiting.empty()) commit(self, false);
      },
      // An idle writer still folds dirty orgs in and sweeps expired event ids, a bounded slice per
      // commit: anything appended meanwhile waits behind one slice only, and the next slice comes
      // behind it.
      [=](checkpoint_atom) {
        if (checkpoint_slice_when_idle(self)) return self->send(self, checkpoint_atom::value);
        auto& ws = self->state;
        self->delayed_send(self,
                           std::max(ws.config.checkpoint_interval / limits::checkpoint_idle_polls_per_interval,
                                    limits::checkpoint_idle_poll_min),
                           checkpoint_atom::value);
      },
      // A checkpoint's event ids are sorted (on the sorter's thread): an idle writer writes them now,
      // slice after slice, rather than at its next poll. (Its own chain, which ends once nothing is
      // due; the poll's goes on beside it.)
      [=](ids_sorted_atom) {
        if (checkpoint_slice_when_idle(self)) self->send(self, ids_sorted_atom::value);
      },
  };
}

}  // namespace

caf::actor spawn_writer(caf::actor_system& system, persistence::Store& store, std::uint64_t last_seq,
                        WriterConfig config, WriterStats& stats) {
  return system.spawn<caf::detached>(writer, &store, last_seq, config, &stats);
}

}  // namespace canopy::actors
