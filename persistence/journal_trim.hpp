// Trims the journal once the checkpoints cover it (ARCHITECTURE.md: durability and recovery).
//
// Recovery replays only the records after the state part's checkpoint mark, so those up to the mark
// are needed only by the audit (`canopy check`), which recomputes every org from the records. Before
// it erases them, the trim folds them into the audit base (Table::audit_base) with the audit's own
// fold (audit_fold.hpp): each org's state and the credits and debits its balance must equal, as of
// the last record trimmed (meta "audit_base_seq"). The audit starts from the base and folds the rest,
// so it reaches what a fold of every record ever written would have, and the journal stays the size
// of a few checkpoints instead of growing for ever (at 1,000,000 batch events a second, ~49 MB a
// second).
//
// A round starts at most once per checkpoint interval and trims through the mark committed then
// (never past Store::trim_limit(), which a backup in progress holds), in slices of at most
// limits::journal_trim_records_per_commit records and limits::journal_trim_bytes_per_commit bytes,
// one per writer commit. Each slice's ops (its records' erases, the base rows of the orgs they touch,
// the new base seq) go to the journal part with the writer's window, so the base and the journal
// change in one transaction: a crash leaves both before the slice or both after it.
//
// The trim never erases a record the audit would report: one that does not decode, that follows a
// gap, that names an org the base lacks or that an org refuses. It stops before it, for the life of
// the process, and says why (stopped_because()); `canopy check` then reports the record.
//
// Owned by the persistence writer, on its thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "domain/time.hpp"
#include "persistence/audit_fold.hpp"
#include "persistence/store.hpp"
#include "persistence/write_ops.hpp"

namespace canopy::persistence {

class JournalTrim {
 public:
  using Clock = std::chrono::steady_clock;

  // Reads where the store's journal was trimmed through.
  JournalTrim(const Store& store, std::chrono::milliseconds interval, Status& status);

  // True while a round is in progress, or when one may start at `now` (the mark is read only then).
  bool due(Clock::time_point now) const { return stopped_.empty() && (target_ > base_seq_ || now >= next_round_at_); }

  // Folds the next slice of the round in progress (starting one if due) into the audit base and adds
  // its ops to `ops`. Returns how many records the ops erase. The next step must come after `ops` are
  // committed (it reads the base rows they write).
  std::size_t step(Clock::time_point now, WriteOps& ops);

  // Every record up to it is erased once the ops of the last step are committed.
  std::uint64_t trimmed_through() const { return base_seq_; }
  // Why the trim stopped for good (a record the audit would report), or empty.
  const std::string& stopped_because() const { return stopped_; }

 private:
  void stop(std::string why);
  // The base row of `id` into orgs_, unless there. False if the store cannot give it.
  bool load(domain::OrgId id);

  const Store& store_;
  const std::chrono::milliseconds interval_;
  std::uint64_t base_seq_ = 0;          // the journal is trimmed through it (meta audit_base_seq)
  domain::Timestamp charged_at_ = 0;    // meta audit_base_charged_at
  std::uint64_t target_ = 0;            // the round in progress trims through it
  Clock::time_point next_round_at_{};   // the first round may start with the first step
  AuditedOrgs orgs_;                    // the base rows one slice folds into
  std::string stopped_;
};

}  // namespace canopy::persistence
