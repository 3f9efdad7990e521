// Trims the journal once the checkpoints cover it (ARCHITECTURE.md: durability and recovery).
//
// Recovery replays only the records after the state part's checkpoint mark, so those up to the mark
// are needed only by the audit, which starts from the audit base (audit_base.hpp) and folds the
// records after it. So once the base holds a record, the journal may let it go: the trim erases the
// records up to the base's committed seq, and the journal stays the size of a few checkpoint
// intervals instead of growing for ever (at 1,000,000 batch events a second, ~49 MB a second; at
// 12,000 single charges a second, ~17 MB).
//
// A round starts when the base is past what is erased, and erases up to where it is then, but never
// past Store::trim_limit() read at that moment, which a backup in progress holds (trim_hold.hpp), nor
// past the checkpoint mark (which the base never passes anyway). The base is committed only after the
// checkpoint mark it folds up to, so either the round sees the backup's hold, or the backup began
// after that base was committed and copies a state part and a base at least as far. A round held
// back entirely waits for the base to move (once per checkpoint interval under load) before it reads
// the limit again, so a long backup costs no busy loop.
// A round erases in slices of at most limits::journal_trim_records_per_commit records, one per writer
// commit, each with the new "journal_erased_through" (meta) in the same transaction. The records are
// contiguous, so a slice erases by key without reading them.
//
// Owned by the persistence writer, on its thread; its ops go to the journal part with the writer's
// window.
#pragma once

#include <cstdint>

#include "persistence/store.hpp"
#include "persistence/write_ops.hpp"

namespace canopy::persistence {

class JournalTrim {
 public:
  // Reads how far the store's journal is erased.
  JournalTrim(const Store& store, Status& status);

  // True when records up to `base_seq` (the audit base's committed seq) remain to be erased.
  bool due(std::uint64_t base_seq) const {
    return target_ > erased_ || (base_seq > erased_ && base_seq != held_base_);
  }

  // Erases the next slice of the round in progress (starting one if the base is past what is erased):
  // adds the ops to `ops`. Returns how many records they erase.
  std::size_t step(std::uint64_t base_seq, WriteOps& ops);

  // Every record up to it is erased once the ops of the last step are committed.
  std::uint64_t erased_through() const { return erased_; }

 private:
  const Store& store_;
  std::uint64_t erased_ = 0;      // meta journal_erased_through
  std::uint64_t target_ = 0;      // the round in progress erases up to it
  std::uint64_t held_base_ = 0;   // a base a round could not erase up to at all (held): not due again
};

}  // namespace canopy::persistence
