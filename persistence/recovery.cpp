#include "persistence/recovery.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "config/limits.hpp"
#include "domain/apply.hpp"
#include "persistence/audit_fold.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"
#include "persistence/materializer.hpp"
#include "persistence/stored_u64.hpp"

namespace canopy::persistence {

using namespace canopy::domain;

namespace {

template <class Reader>
Status read_checkpoint(const Reader& store, std::uint64_t& mark) {
  return read_stored_u64(store, Table::checkpoint, checkpoint_mark_key, mark);
}

Status check_schema(Store& store) {
  std::string bytes;
  Status s = store.get(Table::meta, meta_schema, bytes);
  if (s.is_not_found()) {
    std::string v;
    put_u64_be(v, schema_version);
    WriteOp op{Table::meta, std::string(meta_schema), v};
    return store.commit(std::span<const WriteOp>(&op, 1));
  }
  if (!s.ok()) return s;
  const std::uint64_t stored = get_u64_be(bytes);
  if (stored == schema_version) return {};
  if (stored == schema_version_trim_free) {
    // This build trims the journal: a build of version 1 would misread the folder afterwards (its
    // audit replays from record 1, its recovery takes a trimmed mark for another journal's), so the
    // folder says it is version 2 from now on, and such a build refuses it by its version.
    std::string v;
    put_u64_be(v, schema_version);
    WriteOp op{Table::meta, std::string(meta_schema), v};
    return store.commit(std::span<const WriteOp>(&op, 1));
  }
  return Status{Status::Code::corruption, "data folder has schema version " + std::to_string(stored) +
                                              ", this build reads versions " + std::to_string(schema_version_trim_free) +
                                              " and " + std::to_string(schema_version)};
}

// Visits journal records with seq > after, in order. Stops at the first that does not decode.
template <class Reader>
Status for_each_record(const Reader& store, std::uint64_t after,
                       const std::function<bool(std::uint64_t, const Record&)>& visit) {
  Status bad;
  Status s = store.scan(Table::journal, {}, u64_key(after + 1), [&](std::string_view key, std::string_view value) {
    const std::uint64_t seq = get_u64_be(key);
    auto record = decode_record(value);
    if (!record) {
      bad = Status{Status::Code::corruption, "journal record " + std::to_string(seq) + " does not decode"};
      return false;
    }
    return visit(seq, *record);
  });
  return bad.ok() ? s : bad;
}

}  // namespace

Status recover(Store& store, RecoveryResult& result) {
  if (Status s = check_schema(store); !s.ok()) return s;
  std::uint64_t checkpoint = 0;
  if (Status s = read_checkpoint(store, checkpoint); !s.ok()) return s;
  if (Status s = check_mark_in_journal(store, checkpoint); !s.ok()) return s;
  Materializer materializer(store);
  materializer.set_last_seq(checkpoint);
  WriteOps ops;
  Status replay_error;
  Status s = for_each_record(store, checkpoint, [&](std::uint64_t seq, const Record& record) {
    if (seq != materializer.last_seq() + 1) {
      replay_error = Status{Status::Code::corruption, "journal gap before record " + std::to_string(seq)};
      return false;
    }
    if (auto problem = materializer.add(seq, record, ops)) {
      replay_error = Status{Status::Code::corruption, "journal record " + std::to_string(seq) + " " + *problem};
      return false;
    }
    ++result.replayed_records;
    return true;
  });
  if (!s.ok()) return s;
  if (!replay_error.ok()) return replay_error;
  result.last_seq = materializer.last_seq();
  // The audit base never holds a record the journal has not reached (a folder put together from parts
  // of different stores): the trim would erase records no checkpoint holds yet.
  std::uint64_t base = 0;
  if (Status read = read_stored_u64(store, Table::audit_meta, audit_base_seq_key, base); !read.ok()) return read;
  if (base > result.last_seq) {
    return Status{Status::Code::corruption, "the audit part's base holds records up to " + std::to_string(base) +
                                                ", past the journal's last record " + std::to_string(result.last_seq) +
                                                ": the audit part does not belong to this journal"};
  }
  if (result.replayed_records == 0) return {};
  materializer.flush(ops);
  return store.commit(ops.span());
}

namespace {

// The audit base (journal_trim.hpp): the fold of the records trimmed from the journal, and the last
// of them (0: none trimmed).
Status read_base(const Snapshot& store, AuditedOrgs& orgs, std::uint64_t& base_seq, AuditResult& result) {
  Status s = read_stored_u64(store, Table::audit_meta, audit_base_seq_key, base_seq);
  if (!s.ok()) return s;
  return store.scan(Table::audit_base, {}, {}, [&](std::string_view key, std::string_view value) {
    auto org = decode_audited_org(value);
    if (!org) {
      result.problems.push_back("the audit base row of " + describe(OrgId{get_u64_be(key)}) + " does not decode");
    } else {
      orgs.emplace(get_u64_be(key), std::move(*org));
    }
    return true;
  });
}

// Whether the journal, erased through `erased`, reaches the base's last record: erased through it, or
// holding it. A view reads the audit part after the journal part, so a base the trimmer committed in
// between can be past the journal read (`raced`: the view is read again); a store whose base stays
// past its journal does not belong together.
Status journal_reaches(const Snapshot& store, std::uint64_t erased, std::uint64_t base_seq, bool& reaches) {
  reaches = base_seq == 0 || erased >= base_seq;
  if (reaches) return {};
  return store.scan(Table::journal, u64_key(base_seq), {}, [&](std::string_view, std::string_view) {
    reaches = true;
    return false;
  });
}

// The audit over one view: the stored state it compares is one the server could recover from.
Status audit_view(const Snapshot& store, AuditResult& result, bool& raced) {
  AuditedOrgs expected;  // the base, then every record after it folded in
  Status s = read_base(store, expected, result.base_seq, result);
  if (!s.ok()) return s;
  std::uint64_t erased = 0;  // how far the journal is trimmed
  if (s = read_stored_u64(store, Table::meta, meta_journal_erased_through, erased); !s.ok()) return s;
  bool reaches = false;
  if (s = journal_reaches(store, erased, result.base_seq, reaches); !s.ok()) return s;
  raced = !reaches;
  if (raced) return {};
  std::uint64_t last = result.base_seq;
  s = for_each_record(store, result.base_seq, [&](std::uint64_t seq, const Record& record) {
    if (seq != last + 1) result.problems.push_back("journal gap before record " + std::to_string(seq));
    last = seq;
    ++result.records;
    fold(seq, record, expected, result.problems);
    return true;
  });
  if (!s.ok()) return s;

  // What the server would recover: the stored snapshots plus the replayed tail, each record applied
  // to the snapshots older than it (materializer.hpp).
  std::map<std::uint64_t, OrgState> stored;
  std::unordered_map<std::uint64_t, std::uint64_t> as_of;
  s = store.scan(Table::orgs, {}, {}, [&](std::string_view key, std::string_view value) {
    std::uint64_t seq = 0;
    auto org = decode_org(value, &seq);
    if (!org) {
      result.problems.push_back("stored org " + describe(OrgId{get_u64_be(key)}) + " does not decode");
    } else {
      stored[get_u64_be(key)] = std::move(*org);
      as_of[get_u64_be(key)] = seq;
    }
    return true;
  });
  if (!s.ok()) return s;
  std::uint64_t checkpoint = 0;
  if (s = read_checkpoint(store, checkpoint); !s.ok()) return s;
  if (checkpoint < erased) {
    result.problems.push_back("the checkpoint mark is record " + std::to_string(checkpoint) +
                              ", but the journal was trimmed through record " + std::to_string(erased));
  }
  if (erased > result.base_seq) {
    result.problems.push_back("the journal was trimmed through record " + std::to_string(erased) +
                              ", past the audit base's record " + std::to_string(result.base_seq));
  }
  s = for_each_record(store, checkpoint, [&](std::uint64_t seq, const Record& record) {
    if (const auto* created = std::get_if<OrgCreated>(&record)) {
      if (as_of[raw(created->org)] < seq) stored[raw(created->org)] = make_org(*created);
      return true;
    }
    for (const OrgId id : orgs_touched(record)) {
      auto it = stored.find(raw(id));
      if (it == stored.end() || as_of[raw(id)] >= seq) continue;
      if (!apply_refusal(it->second, record)) domain::apply(it->second, record);
    }
    return true;
  });
  if (!s.ok()) return s;

  result.orgs = expected.size();
  std::vector<std::uint64_t> ids;  // reports in org order
  ids.reserve(expected.size());
  for (const auto& entry : expected) ids.push_back(entry.first);
  std::sort(ids.begin(), ids.end());
  for (const std::uint64_t id : ids) {
    const AuditedOrg& audited = expected.at(id);
    check_audited(audited, result.problems);
    const OrgState& org = audited.state;
    auto it = stored.find(id);
    if (it == stored.end()) {
      result.problems.push_back(describe(OrgId{id}) + ": in the journal but not stored");
    } else if (!(it->second == org)) {
      result.problems.push_back(describe(OrgId{id}) + ": stored state (balance " + std::to_string(it->second.balance_micros) +
                                ", cycle spend " + std::to_string(it->second.cycle_spend_micros) +
                                ") differs from the journal's (balance " + std::to_string(org.balance_micros) +
                                ", cycle spend " + std::to_string(org.cycle_spend_micros) + ")");
    }
  }
  for (const auto& [id, org] : stored) {
    if (!expected.count(id)) result.problems.push_back(describe(OrgId{id}) + ": stored but never created");
  }
  return {};
}

}  // namespace

Status audit(const Store& store, AuditResult& result) {
  bool raced = false;
  for (unsigned attempt = 0; attempt < limits::audit_view_attempts_max; ++attempt) {
    result = {};
    const Status s = store.read([&](const Snapshot& view) { return audit_view(view, result, raced); });
    if (!s.ok() || !raced) return s;
  }
  result.problems.push_back("the audit base holds records up to " + std::to_string(result.base_seq) +
                            ", past the end of the journal: the audit part does not belong to it");
  return {};
}

}  // namespace canopy::persistence
