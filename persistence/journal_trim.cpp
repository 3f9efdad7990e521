#include "persistence/journal_trim.hpp"

#include <algorithm>
#include <set>
#include <variant>

#include "config/limits.hpp"
#include "domain/apply.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"

namespace canopy::persistence {

using namespace canopy::domain;

namespace {

Status read_u64(const Store& store, Table table, std::string_view key, std::uint64_t& value) {
  std::string bytes;
  Status s = store.get(table, key, bytes);
  value = s.ok() ? get_u64_be(bytes) : 0;
  return s.is_not_found() ? Status{} : s;
}

}  // namespace

JournalTrim::JournalTrim(const Store& store, std::chrono::milliseconds interval, Status& status)
    : store_(store), interval_(interval) {
  std::uint64_t charged_at = 0;
  status = read_u64(store, Table::meta, meta_audit_base_seq, base_seq_);
  if (status.ok()) status = read_u64(store, Table::meta, meta_audit_base_charged_at, charged_at);
  charged_at_ = static_cast<Timestamp>(charged_at);
  target_ = base_seq_;
}

void JournalTrim::stop(std::string why) {
  stopped_ = "the journal is no longer trimmed: " + std::move(why);
  target_ = base_seq_;
}

bool JournalTrim::load(OrgId id) {
  if (orgs_.count(raw(id))) return true;
  std::string bytes;
  const Status s = store_.get(Table::audit_base, u64_key(raw(id)), bytes);
  if (s.is_not_found()) return true;  // not in the base: fold_problems says so, unless it is created
  if (!s.ok()) return false;
  auto org = decode_audited_org(bytes);
  if (!org) {
    stop("the audit base row of " + describe(id) + " does not decode");
    return false;
  }
  orgs_.emplace(raw(id), std::move(*org));
  return true;
}

std::size_t JournalTrim::step(Clock::time_point now, WriteOps& ops) {
  if (!due(now)) return 0;
  if (target_ <= base_seq_) {
    next_round_at_ = now + interval_;
    std::uint64_t mark = 0;
    if (!read_u64(store_, Table::checkpoint, checkpoint_mark_key, mark).ok()) return 0;  // the next round retries
    target_ = std::max(base_seq_, std::min(mark, store_.trim_limit()));
    if (target_ == base_seq_) return 0;
  }
  const std::uint64_t through = std::min(target_, store_.trim_limit());
  orgs_.clear();
  std::set<std::uint64_t> changed;
  std::vector<std::uint64_t> erased;
  Timestamp charged_at = charged_at_;
  std::size_t bytes = 0;
  std::vector<std::string> problems;
  const Status s = store_.scan(Table::journal, {}, u64_key(base_seq_ + 1), [&](std::string_view key, std::string_view value) {
    const std::uint64_t seq = get_u64_be(key);
    if (seq > through || erased.size() == limits::journal_trim_records_per_commit ||
        (!erased.empty() && bytes + value.size() > limits::journal_trim_bytes_per_commit)) {
      return false;
    }
    if (seq != (erased.empty() ? base_seq_ : erased.back()) + 1) {
      stop("journal gap before record " + std::to_string(seq));
      return false;
    }
    const auto record = decode_record(value);
    if (!record) {
      stop("journal record " + std::to_string(seq) + " does not decode");
      return false;
    }
    for (const OrgId id : orgs_touched(*record)) {
      if (!load(id)) return false;
    }
    if (auto found = fold_problems(seq, *record, orgs_); !found.empty()) {
      stop(found.front());
      return false;
    }
    fold(seq, *record, orgs_, problems);
    CANOPY_ASSERT(problems.empty());
    for (const OrgId id : orgs_touched(*record)) changed.insert(raw(id));
    if (const auto* charge = std::get_if<ChargeBatch>(&*record)) charged_at = std::max(charged_at, charge->at);
    erased.push_back(seq);
    bytes += value.size();
    return true;
  });
  // A read that failed leaves the round to the next one; what was folded before it is written, as it
  // is before a stop.
  if (!s.ok()) target_ = base_seq_;
  if (erased.empty()) return 0;
  for (const std::uint64_t seq : erased) put_u64_be(ops.add(Table::journal, true).key, seq);
  for (const std::uint64_t id : changed) {
    WriteOp& row = ops.add(Table::audit_base);
    put_u64_be(row.key, id);
    row.value = encode(orgs_.at(id));
  }
  WriteOp& base = ops.add(Table::meta);
  base.key.assign(meta_audit_base_seq);
  put_u64_be(base.value, erased.back());
  WriteOp& at = ops.add(Table::meta);
  at.key.assign(meta_audit_base_charged_at);
  put_u64_be(at.value, static_cast<std::uint64_t>(charged_at));
  base_seq_ = erased.back();
  charged_at_ = charged_at;
  orgs_.clear();
  return erased.size();
}

}  // namespace canopy::persistence
