#include "persistence/recovery.hpp"

#include <map>
#include <unordered_map>

#include "domain/apply.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"
#include "persistence/materializer.hpp"

namespace canopy::persistence {

using namespace canopy::domain;

namespace {

// `Reader`: a Store, or a Snapshot of one (the audit reads one consistent view).
template <class Reader>
Status read_checkpoint(const Reader& store, std::uint64_t& mark) {
  mark = 0;
  return store.scan(Table::checkpoint, checkpoint_mark_key, {}, [&](std::string_view key, std::string_view value) {
    if (key == checkpoint_mark_key) mark = get_u64_be(value);
    return false;
  });
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
  if (get_u64_be(bytes) != schema_version) {
    return Status{Status::Code::corruption, "data folder has schema version " + std::to_string(get_u64_be(bytes)) +
                                                ", this build reads version " + std::to_string(schema_version)};
  }
  return {};
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
  if (result.replayed_records == 0) return {};
  materializer.flush(ops);
  return store.commit(ops.span());
}

namespace {

// Independent sums per org, computed straight from the records rather than through domain::apply.
struct Ledger {
  Micros credits = 0;  // grants, top-ups, free credits, transfers in
  Micros debits = 0;   // charges paid, transfers out
};

void sum_record(const Record& record, std::unordered_map<OrgId, Ledger>& ledgers) {
  if (const auto* c = std::get_if<OrgCreated>(&record)) {
    ledgers[c->org].credits += c->free_credits_micros;
  } else if (const auto* r = std::get_if<CycleRolled>(&record)) {
    ledgers[r->org].credits += r->free_credits_micros;
  } else if (const auto* p = std::get_if<PaymentRecorded>(&record)) {
    if (p->status == PaymentStatus::succeeded) ledgers[p->org].credits += p->amount_micros;
  } else if (const auto* t = std::get_if<TransferRecorded>(&record)) {
    ledgers[t->from].debits += t->amount_micros;
    ledgers[t->to].credits += t->amount_micros;
  } else if (const auto* b = std::get_if<ChargeBatch>(&record)) {
    for (const auto& e : b->events) ledgers[b->payer()].debits += e.cost_micros;
  }
}

std::string describe(OrgId id) { return format_id(org_prefix, raw(id)); }

// The audit over one view: the stored state it compares is one the server could recover from.
Status audit_view(const Snapshot& store, AuditResult& result) {
  std::map<std::uint64_t, OrgState> expected;  // full replay, ordered for stable reports
  std::unordered_map<OrgId, Ledger> ledgers;
  std::uint64_t last = 0;
  Status s = for_each_record(store, 0, [&](std::uint64_t seq, const Record& record) {
    if (seq != last + 1) result.problems.push_back("journal gap before record " + std::to_string(seq));
    last = seq;
    ++result.records;
    sum_record(record, ledgers);
    if (const auto* created = std::get_if<OrgCreated>(&record)) {
      expected[raw(created->org)] = make_org(*created);
      return true;
    }
    for (const OrgId id : orgs_touched(record)) {
      auto it = expected.find(raw(id));
      if (it == expected.end()) {
        result.problems.push_back("record " + std::to_string(seq) + " names unknown org " + describe(id));
        continue;
      }
      if (auto refusal = apply_refusal(it->second, record)) {
        result.problems.push_back("record " + std::to_string(seq) + " on " + describe(id) + ": " + *refusal);
        continue;
      }
      domain::apply(it->second, record);
    }
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
  for (const auto& [id, org] : expected) {
    const std::string name = describe(OrgId{id});
    if (auto broken = check_invariants(org)) result.problems.push_back(name + ": " + *broken);
    const Ledger& ledger = ledgers[OrgId{id}];
    if (org.balance_micros != ledger.credits - ledger.debits) {
      result.problems.push_back(name + ": balance " + std::to_string(org.balance_micros) + " but the records sum to " +
                                std::to_string(ledger.credits - ledger.debits));
    }
    auto it = stored.find(id);
    if (it == stored.end()) {
      result.problems.push_back(name + ": in the journal but not stored");
    } else if (!(it->second == org)) {
      result.problems.push_back(name + ": stored state (balance " + std::to_string(it->second.balance_micros) +
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
  return store.read([&](const Snapshot& view) { return audit_view(view, result); });
}

}  // namespace canopy::persistence
