#include "persistence/pending_id_rows.hpp"

#include <algorithm>
#include <limits>
#include <utility>

#include "config/limits.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"

namespace canopy::persistence {

void PendingIdRows::Generation::clear() {
  arena.clear();
  rows.clear();
  first_seq = 0;
}

void PendingIdRows::add(std::uint64_t seq, const domain::ChargeBatch& batch, Clock::time_point now) {
  if (batch.events.empty()) return;
  auto& g = pending_;
  if (g.first_seq == 0) {
    g.first_seq = seq;
    g.since = now;
  }
  // The same value for every event of the record, once.
  const std::size_t value = g.arena.size();
  g.arena.append(encode(EventIdRow{seq, batch.payer(), batch.at}));
  const std::uint64_t origin = raw(batch.origin());
  for (const auto& e : batch.events) {
    const std::size_t key = g.arena.size();
    append_scoped_key(g.arena, origin, e.id);  // as lookups build it
    char prefix[8] = {};
    e.id.copy(prefix, sizeof prefix);
    g.rows.push_back(Row{origin, get_u64_be(std::string_view(prefix, sizeof prefix)), key, scope_bytes + e.id.size(), value});
  }
}

bool PendingIdRows::due(Clock::time_point cutoff) const {
  if (next_ < writing_.rows.size()) return true;
  return pending_.first_seq != 0 && (pending_.since <= cutoff || pending_.rows.size() > limits::pending_id_rows_max);
}

bool PendingIdRows::begin() {
  if (next_ < writing_.rows.size()) return true;
  if (pending_.rows.empty()) return false;
  writing_.clear();
  std::swap(writing_, pending_);  // the old arena's memory becomes the next generation's
  next_ = 0;
  auto& g = writing_;
  if (g.rows.size() <= limits::pending_id_rows_sorted_max) {
    std::sort(g.rows.begin(), g.rows.end(), [&g](const Row& a, const Row& b) {
      if (a.org != b.org) return a.org < b.org;
      if (a.id_prefix != b.id_prefix) return a.id_prefix < b.id_prefix;
      return g.key(a) < g.key(b);
    });
  }
  return true;
}

void PendingIdRows::put(WriteOps& ops, const Row& row) const {
  WriteOp& op = ops.add(Table::event_ids);
  op.key.assign(writing_.key(row));
  op.value.assign(writing_.value(row));
}

std::size_t PendingIdRows::write_slice(WriteOps& ops, std::size_t max_rows) {
  // At least a fixed share of the checkpoint per commit, so a big one (a burst of batches) is done in
  // a bounded number of commits however many rows it has, well before the next is due.
  const std::size_t slice = std::max(max_rows, writing_.rows.size() / limits::checkpoint_id_slices_min);
  const std::size_t left = writing_.rows.size() - next_;
  const std::size_t n = pending_.rows.size() > limits::pending_id_rows_max ? left : std::min(left, slice);
  for (std::size_t i = 0; i < n; ++i) put(ops, writing_.rows[next_ + i]);
  next_ += n;
  written_total_ += n;
  return n;
}

void PendingIdRows::write_all(WriteOps& ops) {
  while (begin()) write_slice(ops, std::numeric_limits<std::size_t>::max());
}

std::uint64_t PendingIdRows::indexed_through(std::uint64_t last_seq) const {
  // Counted by generation, not by row: the rows of a record may be anywhere in a sorted one.
  if (next_ < writing_.rows.size()) return writing_.first_seq - 1;
  if (pending_.first_seq != 0) return pending_.first_seq - 1;
  return last_seq;
}

}  // namespace canopy::persistence
