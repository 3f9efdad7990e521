#include "actors/journal_trimmer.hpp"

#include <pthread.h>

#include <cstdio>

#include "actors/state_committer.hpp"
#include "persistence/audit_base.hpp"
#include "persistence/keys.hpp"
#include "persistence/stored_u64.hpp"
#include "persistence/write_ops.hpp"

namespace canopy::actors {

JournalTrimmer::JournalTrimmer(persistence::Store& store, WriterStats& stats, std::chrono::milliseconds interval)
    : store_(store), stats_(stats), interval_(interval), thread_([this] { run(); }) {}

JournalTrimmer::~JournalTrimmer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void JournalTrimmer::run() {
  pthread_setname_np(pthread_self(), "canopy.trim");  // per-thread CPU in bench/run.sh
  persistence::Status status;
  persistence::AuditBase base(store_, status);
  if (!status.ok()) commit_failed(status);
  stats_.audit_base_seq.store(base.seq(), std::memory_order_release);
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    persistence::WriteOps ops;
    for (;;) {
      std::uint64_t mark = 0;
      if (!persistence::read_stored_u64(store_, persistence::Table::checkpoint, persistence::checkpoint_mark_key, mark).ok()) {
        break;
      }
      ops.clear();
      if (base.advance(mark, ops) == 0) break;
      if (status = store_.commit(ops.span()); !status.ok()) commit_failed(status);
      stats_.audit_base_seq.store(base.seq(), std::memory_order_release);
      std::lock_guard stop(mutex_);
      if (stopping_) break;
    }
    if (!base.stopped_because().empty() && !stats_.journal_trim_stopped.exchange(true)) {
      std::fprintf(stderr, "canopy: %s (canopy check reports it)\n", base.stopped_because().c_str());
    }
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

}  // namespace canopy::actors
