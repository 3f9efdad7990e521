#include "persistence/journal_trim.hpp"

#include <algorithm>

#include "config/limits.hpp"
#include "persistence/keys.hpp"
#include "persistence/stored_u64.hpp"

namespace canopy::persistence {

JournalTrim::JournalTrim(const Store& store, Status& status) : store_(store) {
  status = read_stored_u64(store, Table::meta, meta_journal_erased_through, erased_);
  target_ = erased_;
}

std::size_t JournalTrim::step(std::uint64_t base_seq, WriteOps& ops) {
  if (!due(base_seq)) return 0;
  if (target_ <= erased_) {
    // The base is never past the committed checkpoint mark; the mark bounds the round all the same,
    // should a base from elsewhere be (recovery refuses one past the journal's end).
    std::uint64_t mark = 0;
    if (!read_stored_u64(store_, Table::checkpoint, checkpoint_mark_key, mark).ok()) return 0;  // read again next round
    const std::uint64_t limit = std::min(store_.trim_limit(), mark);
    target_ = std::max(erased_, std::min(base_seq, limit));
    if (target_ == erased_) {
      held_base_ = base_seq;  // no further until the base moves (a backup holds the trim)
      return 0;
    }
  }
  const std::uint64_t through = std::min(target_, erased_ + limits::journal_trim_records_per_commit);
  for (std::uint64_t seq = erased_ + 1; seq <= through; ++seq) put_u64_be(ops.add(Table::journal, true).key, seq);
  WriteOp& meta = ops.add(Table::meta);
  meta.key.assign(meta_journal_erased_through);
  put_u64_be(meta.value, through);
  const std::size_t erased = static_cast<std::size_t>(through - erased_);
  erased_ = through;
  return erased;
}

}  // namespace canopy::persistence
