#include "domain/org.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "domain/apply.hpp"
#include "domain/records.hpp"

namespace canopy::domain {

const Member* OrgState::find_member(UserId user) const {
  auto it = std::lower_bound(members.begin(), members.end(), user,
                             [](const Member& m, UserId u) { return raw(m.user) < raw(u); });
  return it != members.end() && it->user == user ? &*it : nullptr;
}

const Invitation* OrgState::find_invitation(const TokenHash& token_hash) const {
  for (const auto& inv : invitations) {
    if (hashes_equal(inv.token_hash, token_hash)) return &inv;
  }
  return nullptr;
}

std::size_t OrgState::admin_count() const {
  return static_cast<std::size_t>(
      std::count_if(members.begin(), members.end(), [](const Member& m) { return m.role == Role::admin; }));
}

std::optional<std::string> check_invariants(const OrgState& org) {
  if (org.id == OrgId::none) return "org id is none";
  if (org.balance_micros < 0) return "balance below zero";
  if (org.cycle_spend_micros < 0) return "cycle spend below zero";
  if (org.is_root() && (org.depth != 0 || org.consolidated)) return "root with depth or consolidated billing";
  if (!org.is_root() && org.depth == 0) return "sub-org at depth 0";
  if (org.monthly_limit_micros && *org.monthly_limit_micros < 0) return "negative limit";
  for (std::size_t i = 1; i < org.members.size(); ++i) {
    if (raw(org.members[i - 1].user) >= raw(org.members[i].user)) return "members not sorted and unique";
  }
  return std::nullopt;
}

void invariant_failed(const char* what, const char* file, int line) {
  std::fprintf(stderr, "canopy: invariant failed: %s (%s:%d)\n", what, file, line);
  std::fflush(stderr);
  std::abort();
}

CycleRolled rollover_to(const OrgState& org, Cycle cycle, Micros free_credits_micros) {
  CANOPY_ASSERT(cycle > org.cycle);
  // Cycles are months: even 10,000 years of gap times the largest allowance stays far inside int64.
  const Micros months = cycle - org.cycle;
  CANOPY_ASSERT(months < 120'000 && free_credits_micros <= 1'000'000'000'000);
  const Micros credits = org.free_credits_recipient ? free_credits_micros * months : 0;
  return CycleRolled{org.id, cycle, credits, PaymentId::none};
}

OrgState view_at(const OrgState& org, Timestamp now, Micros free_credits_micros) {
  const Cycle current = cycle_of(now);
  if (current <= org.cycle) return org;
  OrgState out = org;
  apply_rollover(out, rollover_to(org, current, free_credits_micros));
  return out;
}

}  // namespace canopy::domain
