#include "persistence/audit_fold.hpp"

#include <variant>

#include "domain/apply.hpp"
#include "domain/ids.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"

namespace canopy::persistence {

using namespace canopy::domain;

namespace {

void credit(AuditedOrgs& orgs, OrgId id, Micros amount) {
  if (auto it = orgs.find(raw(id)); it != orgs.end()) it->second.ledger.credits += amount;
}

void debit(AuditedOrgs& orgs, OrgId id, Micros amount) {
  if (auto it = orgs.find(raw(id)); it != orgs.end()) it->second.ledger.debits += amount;
}

// The record's money, read off the record itself rather than through domain::apply.
void sum_record(const Record& record, AuditedOrgs& orgs) {
  if (const auto* c = std::get_if<OrgCreated>(&record)) {
    credit(orgs, c->org, c->free_credits_micros);
  } else if (const auto* r = std::get_if<CycleRolled>(&record)) {
    credit(orgs, r->org, r->free_credits_micros);
  } else if (const auto* p = std::get_if<PaymentRecorded>(&record)) {
    if (p->status == PaymentStatus::succeeded) credit(orgs, p->org, p->amount_micros);
  } else if (const auto* t = std::get_if<TransferRecorded>(&record)) {
    debit(orgs, t->from, t->amount_micros);
    credit(orgs, t->to, t->amount_micros);
  } else if (const auto* b = std::get_if<ChargeBatch>(&record)) {
    Micros paid = 0;
    for (const auto& e : b->events) paid += e.cost_micros;
    debit(orgs, b->payer(), paid);
  }
}

}  // namespace

std::string describe(OrgId id) { return format_id(org_prefix, raw(id)); }

std::vector<std::string> fold_problems(std::uint64_t seq, const Record& record, const AuditedOrgs& orgs) {
  std::vector<std::string> problems;
  if (std::holds_alternative<OrgCreated>(record)) return problems;
  for (const OrgId id : orgs_touched(record)) {
    auto it = orgs.find(raw(id));
    if (it == orgs.end()) {
      problems.push_back("record " + std::to_string(seq) + " names unknown org " + describe(id));
    } else if (auto refusal = apply_refusal(it->second.state, record)) {
      problems.push_back("record " + std::to_string(seq) + " on " + describe(id) + ": " + *refusal);
    }
  }
  return problems;
}

void fold_clean(const Record& record, AuditedOrgs& orgs) {
  if (const auto* created = std::get_if<OrgCreated>(&record)) {
    orgs[raw(created->org)] = AuditedOrg{make_org(*created), {}};
    sum_record(record, orgs);
    return;
  }
  sum_record(record, orgs);
  for (const OrgId id : orgs_touched(record)) domain::apply(orgs.at(raw(id)).state, record);
}

void fold(std::uint64_t seq, const Record& record, AuditedOrgs& orgs, std::vector<std::string>& problems) {
  auto found = fold_problems(seq, record, orgs);
  if (found.empty()) return fold_clean(record, orgs);
  problems.insert(problems.end(), found.begin(), found.end());
  sum_record(record, orgs);
  for (const OrgId id : orgs_touched(record)) {
    auto it = orgs.find(raw(id));
    if (it != orgs.end() && !apply_refusal(it->second.state, record)) domain::apply(it->second.state, record);
  }
}

void check_audited(const AuditedOrg& org, std::vector<std::string>& problems) {
  const std::string name = describe(org.state.id);
  if (auto broken = check_invariants(org.state)) problems.push_back(name + ": " + *broken);
  const Micros summed = org.ledger.credits - org.ledger.debits;
  if (org.state.balance_micros != summed) {
    problems.push_back(name + ": balance " + std::to_string(org.state.balance_micros) + " but the records sum to " +
                       std::to_string(summed));
  }
}

std::string encode(const AuditedOrg& org) {
  std::string out;
  put_u64_be(out, static_cast<std::uint64_t>(org.ledger.credits));
  put_u64_be(out, static_cast<std::uint64_t>(org.ledger.debits));
  out += encode(org.state);
  return out;
}

std::optional<AuditedOrg> decode_audited_org(std::string_view bytes) {
  if (bytes.size() < 16) return std::nullopt;
  auto state = decode_org(bytes.substr(16));
  if (!state) return std::nullopt;
  return AuditedOrg{std::move(*state),
                    Ledger{static_cast<Micros>(get_u64_be(bytes.substr(0, 8))), static_cast<Micros>(get_u64_be(bytes.substr(8, 8)))}};
}

}  // namespace canopy::persistence
