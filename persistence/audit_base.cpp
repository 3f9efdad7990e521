#include "persistence/audit_base.hpp"

#include <algorithm>
#include <variant>

#include "config/limits.hpp"
#include "domain/apply.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"
#include "persistence/stored_u64.hpp"

namespace canopy::persistence {

using namespace canopy::domain;

AuditBase::AuditBase(const Store& store, Status& status) : store_(store) {
  std::uint64_t charged_at = 0;
  status = read_stored_u64(store, Table::audit_meta, audit_base_seq_key, seq_);
  if (status.ok()) status = read_stored_u64(store, Table::audit_meta, audit_charged_at_key, charged_at);
  charged_at_ = static_cast<Timestamp>(charged_at);
}

void AuditBase::stop(std::string why) { stopped_ = "the journal is no longer trimmed: " + std::move(why); }

bool AuditBase::load(OrgId id) {
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

std::size_t AuditBase::advance(std::uint64_t through, WriteOps& ops) {
  if (!stopped_.empty() || through <= seq_) return 0;
  orgs_.clear();
  std::uint64_t last = seq_;
  std::size_t folded = 0;
  std::size_t bytes = 0;
  Timestamp charged_at = charged_at_;
  // A read that fails ends the scan like a stop: what was folded before it is written, and the next
  // call goes on from there.
  store_.scan(Table::journal, {}, u64_key(seq_ + 1), [&](std::string_view key, std::string_view value) {
    const std::uint64_t seq = get_u64_be(key);
    if (seq > through || orgs_.size() >= limits::audit_base_orgs_per_commit_max ||
        (folded > 0 && bytes + value.size() > limits::audit_base_bytes_per_commit)) {
      return false;
    }
    if (seq != last + 1) {
      stop("journal gap before record " + std::to_string(seq));
      return false;
    }
    const auto record = decode_record(value);
    if (!record) {
      stop("journal record " + std::to_string(seq) + " does not decode");
      return false;
    }
    const auto touched = orgs_touched(*record);
    for (const OrgId id : touched) {
      if (!load(id)) return false;
    }
    if (auto found = fold_problems(seq, *record, orgs_); !found.empty()) {
      stop(found.front());
      return false;
    }
    fold_clean(*record, orgs_);
    if (const auto* charge = std::get_if<ChargeBatch>(&*record)) charged_at = std::max(charged_at, charge->at);
    last = seq;
    bytes += value.size();
    ++folded;
    return true;
  });
  if (folded == 0) return 0;
  // Every org in orgs_ was loaded or created for a record folded since (or for the record it stopped
  // before, and is then written back as it was).
  for (const auto& [id, org] : orgs_) {
    WriteOp& row = ops.add(Table::audit_base);
    put_u64_be(row.key, id);
    row.value = encode(org);
  }
  WriteOp& base = ops.add(Table::audit_meta);
  base.key.assign(audit_base_seq_key);
  put_u64_be(base.value, last);
  WriteOp& at = ops.add(Table::audit_meta);
  at.key.assign(audit_charged_at_key);
  put_u64_be(at.value, static_cast<std::uint64_t>(charged_at));
  if (day_of(charged_at) != day_of(charged_at_)) {
    WriteOp& date = ops.add(Table::audit_dates);
    put_u64_be(date.key, last);
    put_u64_be(date.value, static_cast<std::uint64_t>(charged_at));
  }
  seq_ = last;
  charged_at_ = charged_at;
  orgs_.clear();
  return folded;
}

}  // namespace canopy::persistence
