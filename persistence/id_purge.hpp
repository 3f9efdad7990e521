// Forgets accepted event ids once they are older than the idempotency retention
// (--idempotency-retention-days, at least 35): a retry within the retention gets its first answer;
// after it, the id is free again, and the event-id index stays the size of the retention window
// instead of growing for ever.
//
// A sweep walks the whole index in key order, a bounded slice of rows per writer commit, and erases
// the rows accepted before (the sweep's start - retention), in the same commit as whatever else it
// carries. A sweep starts once per limits::id_purge_interval_seconds of the service clock (so a
// manual clock moved forward by tests starts one at once); an id is therefore forgotten between the
// retention and the retention plus one interval and a sweep after it was accepted, never earlier.
//
// Owned by the persistence writer. Its erases go to the state part with the writer's window
// (actors/state_committer.hpp), ahead of that window's own rows and behind every earlier window's, in
// order; it scans the committed state part, which may be behind those windows. That is safe: a row it
// sees and finds expired can be accepted anew only after a lookup missed it, that is once the erase
// is committed, and the new row comes in a later window; a row it does not see yet is new, accepted
// now, and not expired. A sweep starts only once every erase of the sweeps before it is committed
// (the writer passes the committer's count of finished sweeps): one that started earlier would see the
// previous sweep's expired rows again, erase them again and count each twice in
// canopy_event_ids_forgotten_total.
//
// Times are the service clock's, as the charges' are: a clock stepped forward (an NTP correction, a
// resumed VM) forgets ids early by as much, and that cannot be undone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "domain/time.hpp"
#include "persistence/store.hpp"
#include "persistence/write_ops.hpp"

namespace canopy::persistence {

class IdPurge {
 public:
  IdPurge(const Store& store, domain::Timestamp retention_seconds, domain::Timestamp interval_seconds)
      : store_(store), retention_(retention_seconds), interval_(interval_seconds) {}

  // True while a sweep is in progress, or when one is due at `now` and can start: `sweeps_committed`
  // (how many sweeps have every erase committed) has caught up with sweeps_finished().
  bool due(domain::Timestamp now, std::uint64_t sweeps_committed) const {
    return sweeping_ || (now >= next_sweep_at_ && sweeps_committed >= sweeps_finished_);
  }

  // Examines the next `max_rows` rows of the sweep in progress (starting one if due) and adds an erase
  // op for each expired one. Returns how many it erased.
  std::size_t step(domain::Timestamp now, std::uint64_t sweeps_committed, std::size_t max_rows, WriteOps& ops);

  std::uint64_t sweeps_finished() const { return sweeps_finished_; }

 private:
  // When the row was accepted, or no earlier: from the row, or for rows written before rows said so,
  // from the journal record it names (nullopt if that cannot be read: the row is then kept).
  std::optional<domain::Timestamp> accepted_at(std::string_view value) const;
  // For such a row whose record `seq` was trimmed (journal_trim.hpp): a time no earlier than its
  // acceptance and at most about a day later, from the audit base's dates (nullopt: the record is not
  // in the base, only missing).
  std::optional<domain::Timestamp> trimmed_charge_at(std::uint64_t seq) const;

  const Store& store_;
  const domain::Timestamp retention_;
  const domain::Timestamp interval_;
  // The journal record dated last (rows written before rows carried their time): one batch's ids are
  // neighbours in the index, so one decode serves them all.
  mutable std::uint64_t dated_seq_ = 0;
  mutable domain::Timestamp dated_at_ = 0;
  bool sweeping_ = false;
  domain::Timestamp next_sweep_at_ = 0;  // the first sweep starts with the first step
  domain::Timestamp cutoff_ = 0;         // this sweep erases rows accepted before it
  std::string resume_;                   // the first key this sweep has not examined
  std::uint64_t sweeps_finished_ = 0;
};

}  // namespace canopy::persistence
