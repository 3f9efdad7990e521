#include "persistence/id_purge.hpp"

#include <variant>

#include "persistence/codec.hpp"
#include "persistence/keys.hpp"
#include "persistence/stored_u64.hpp"

namespace canopy::persistence {

using namespace canopy::domain;

std::optional<Timestamp> IdPurge::accepted_at(std::string_view value) const {
  const auto row = decode_event_id_row(value);
  if (!row) return std::nullopt;
  if (row->at) return row->at;
  if (row->seq == dated_seq_) return dated_at_;
  std::string bytes;
  const Status s = store_.get(Table::journal, u64_key(row->seq), bytes);
  if (s.is_not_found()) return trimmed_charge_at(row->seq);
  if (!s.ok()) return std::nullopt;
  const auto record = decode_record(bytes);
  const auto* charge = record ? std::get_if<ChargeBatch>(&*record) : nullptr;
  if (!charge) return std::nullopt;
  dated_seq_ = row->seq;
  dated_at_ = charge->at;
  return charge->at;
}

std::optional<Timestamp> IdPurge::trimmed_charge_at(std::uint64_t seq) const {
  std::uint64_t base = 0;
  if (!read_stored_u64(store_, Table::audit_meta, audit_base_seq_key, base).ok() || seq > base) return std::nullopt;
  // The first date at or after the record: its charges were accepted by then.
  std::optional<Timestamp> at;
  const Status s = store_.scan(Table::audit_dates, {}, u64_key(seq), [&](std::string_view, std::string_view value) {
    at = static_cast<Timestamp>(get_u64_be(value));
    return false;
  });
  if (!s.ok()) return std::nullopt;
  if (at) return at;
  std::uint64_t latest = 0;  // after the last date: the latest charge in the base
  if (!read_stored_u64(store_, Table::audit_meta, audit_charged_at_key, latest).ok()) return std::nullopt;
  return static_cast<Timestamp>(latest);
}

std::size_t IdPurge::step(Timestamp now, std::uint64_t sweeps_committed, std::size_t max_rows, WriteOps& ops) {
  if (!sweeping_) {
    if (!due(now, sweeps_committed)) return 0;
    sweeping_ = true;
    cutoff_ = now - retention_;
    next_sweep_at_ = now + interval_;
    resume_.clear();
  }
  std::size_t examined = 0;
  std::size_t erased = 0;
  bool stopped = false;
  const Status s = store_.scan(Table::event_ids, {}, resume_, [&](std::string_view key, std::string_view value) {
    if (examined == max_rows) {
      resume_.assign(key);
      stopped = true;
      return false;
    }
    ++examined;
    const auto at = accepted_at(value);
    if (at && *at < cutoff_) {
      ops.push_back(WriteOp{Table::event_ids, std::string(key), {}, true});
      ++erased;
    }
    return true;
  });
  // A store that cannot be read now is retried by the next sweep; forgetting ids is never urgent.
  if (!s.ok() || !stopped) {
    sweeping_ = false;
    if (s.ok()) ++sweeps_finished_;
  }
  return erased;
}

}  // namespace canopy::persistence
