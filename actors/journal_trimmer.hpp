// Folds the journal into the audit base on a thread of its own (persistence/audit_base.hpp), behind
// the checkpoints, and commits the audit part; the persistence writer then erases the records the base
// holds (persistence/journal_trim.hpp). Neither the fold's CPU nor the base's commit and fsync is on
// the path of an acknowledgement.
//
// Once per checkpoint interval it reads the committed checkpoint mark and folds up to it, commit after
// commit, then publishes the base's committed seq (WriterStats::audit_base_seq), which the writer
// erases up to. If the fold stops at a record the audit would report, it logs why once and sets
// WriterStats::journal_trim_stopped; the journal is then kept from that record on.
//
// A failed commit is fatal, as the writer's is (commit_failed).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "actors/writer.hpp"
#include "persistence/store.hpp"

namespace canopy::actors {

class JournalTrimmer {
 public:
  JournalTrimmer(persistence::Store& store, WriterStats& stats, std::chrono::milliseconds interval);
  // Stops the thread (a fold in progress finishes its commit first).
  ~JournalTrimmer();
  JournalTrimmer(const JournalTrimmer&) = delete;
  JournalTrimmer& operator=(const JournalTrimmer&) = delete;

 private:
  void run();

  persistence::Store& store_;
  WriterStats& stats_;
  const std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;  // stopping
  bool stopping_ = false;
  std::thread thread_;  // last: started once everything above is
};

}  // namespace canopy::actors
