#include "actors/state_committer.hpp"

#include <pthread.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "config/limits.hpp"
#include "domain/org.hpp"

namespace canopy::actors {

void commit_failed(const persistence::Status& status) {
  std::fprintf(stderr, "canopy: storage commit failed, stopping so nothing unacknowledged is trusted: %s\n",
               status.message.c_str());
  std::fflush(stderr);
  std::abort();
}

StateCommitter::StateCommitter(persistence::Store& store, WriterStats& stats, Notify notify)
    : store_(store), stats_(stats), notify_(std::move(notify)), thread_([this] { run(); }) {}

StateCommitter::~StateCommitter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_.notify_one();
  thread_.join();
}

std::uint64_t StateCommitter::submit(persistence::WriteOps& ops, const Progress& progress, bool notify) {
  std::unique_lock lock(mutex_);
  room_.wait(lock, [this] { return waiting_.size() < limits::state_batches_waiting_max; });
  Batch& batch = waiting_.emplace_back();
  std::swap(batch.ops, ops);
  if (!spare_.empty()) {
    std::swap(ops, spare_.back());
    spare_.pop_back();
  }
  batch.progress = progress;
  batch.number = ++submitted_;
  batch.notify = notify;
  const std::uint64_t number = batch.number;
  lock.unlock();
  work_.notify_one();
  return number;
}

void StateCommitter::wait_idle() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return waiting_.empty() && !busy_; });
}

void StateCommitter::wait_committed(std::uint64_t number) {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this, number] { return committed_ >= number; });
}

void StateCommitter::run() {
  pthread_setname_np(pthread_self(), "canopy.state");  // per-thread CPU in bench/run.sh
  std::deque<Batch> taken;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      // Give back the buffers of the batches just committed, then wait for more.
      for (auto& batch : taken) {
        committed_ = batch.number;
        if (spare_.size() < limits::state_buffers_kept) {
          batch.ops.clear();
          spare_.push_back(std::move(batch.ops));
        }
      }
      if (!taken.empty()) idle_.notify_all();
      taken.clear();
      busy_ = false;
      work_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
      if (waiting_.empty()) return;  // stopping, and everything submitted is committed
      // Every batch waiting, up to a bound on the ops of one commit (at least one batch).
      std::size_t ops = 0;
      do {
        ops += waiting_.front().ops.size();
        taken.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
      } while (!waiting_.empty() && ops + waiting_.front().ops.size() <= limits::state_commit_ops_max);
      busy_ = true;
    }
    room_.notify_all();
    commit(taken);
  }
}

void StateCommitter::commit(std::deque<Batch>& batches) {
  // One commit for every batch waiting: each leaf they share is written and synced once.
  persistence::WriteOps& ops = batches.front().ops;
  for (std::size_t i = 1; i < batches.size(); ++i) batches[i].ops.move_all(ops);
  if (!ops.empty()) {
    const auto started = std::chrono::steady_clock::now();
    if (auto status = store_.commit(ops.span()); !status.ok()) commit_failed(status);
    const auto micros = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count());
    stats_.state_commits.fetch_add(1, std::memory_order_relaxed);
    stats_.state_commit_micros_total.fetch_add(micros, std::memory_order_relaxed);
    if (micros > stats_.state_commit_micros_max.load(std::memory_order_relaxed)) {
      stats_.state_commit_micros_max.store(micros, std::memory_order_relaxed);
    }
  }
  // Published in submission order, so none moves back.
  const Progress& last = batches.back().progress;
  CANOPY_ASSERT(last.ids_indexed_through >= stats_.ids_indexed_seq.load(std::memory_order_relaxed));
  std::uint64_t forgotten = 0;
  for (const auto& batch : batches) forgotten += batch.progress.event_ids_forgotten;
  stats_.event_ids_forgotten.fetch_add(forgotten, std::memory_order_relaxed);
  stats_.event_id_sweeps.store(last.event_id_sweeps, std::memory_order_release);  // IdPurge reads after it
  stats_.event_id_rows_indexed.store(last.id_rows_written, std::memory_order_release);
  stats_.ids_indexed_seq.store(last.ids_indexed_through, std::memory_order_release);
  stats_.index_watchers.advanced(last.ids_indexed_through);  // after the store: the told read it
  for (auto it = batches.rbegin(); it != batches.rend(); ++it) {
    if (it->notify) {
      notify_(it->number);  // covers every batch before it
      break;
    }
  }
}

}  // namespace canopy::actors
