// The audit's fold of the journal: each org's state through domain::apply, and beside it, summed
// straight from the records without domain::apply, the credits and debits its balance must equal.
//
// `canopy check` folds the whole journal with it (recovery.hpp). The journal trim (journal_trim.hpp)
// folds the records it is about to erase into the audit base with the same code, so an audit that
// starts from the base and folds the rest reaches what a fold of every record ever written would.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/org.hpp"
#include "domain/records.hpp"

namespace canopy::persistence {

struct Ledger {
  domain::Micros credits = 0;  // grants, top-ups, free credits, transfers in
  domain::Micros debits = 0;   // charges paid, transfers out
  friend bool operator==(const Ledger&, const Ledger&) = default;
};

struct AuditedOrg {
  domain::OrgState state;
  Ledger ledger;
  friend bool operator==(const AuditedOrg&, const AuditedOrg&) = default;
};

// By raw org id. Unordered: a fold looks orgs up several times a record (reports sort the ids).
using AuditedOrgs = std::unordered_map<std::uint64_t, AuditedOrg>;

// The problems folding record `seq` into `orgs` would raise: an org it names that `orgs` lacks, or one
// that refuses it (domain::apply_refusal). Empty: the fold is clean.
std::vector<std::string> fold_problems(std::uint64_t seq, const domain::Record& record, const AuditedOrgs& orgs);

// Folds record `seq` into `orgs`: an OrgCreated makes its org; any other record is applied to each org
// it touches that accepts it, and its money is counted in the ledgers of the orgs it names that exist.
// Appends its problems (as fold_problems) to `problems`.
void fold(std::uint64_t seq, const domain::Record& record, AuditedOrgs& orgs, std::vector<std::string>& problems);
// The same for a record fold_problems() found clean (the journal trim checks before it folds).
void fold_clean(const domain::Record& record, AuditedOrgs& orgs);

// Problems with one org once folded: a broken invariant, or a balance its ledger does not sum to.
void check_audited(const AuditedOrg& org, std::vector<std::string>& problems);

// "org_…", as reports name orgs.
std::string describe(domain::OrgId id);

// An audited org as the audit base stores it (Table::audit_base, keys.hpp).
std::string encode(const AuditedOrg& org);
std::optional<AuditedOrg> decode_audited_org(std::string_view bytes);

}  // namespace canopy::persistence
