#include "domain/apply.hpp"

#include <algorithm>

namespace canopy::domain {

Micros ChargeBatch::total_micros() const {
  Micros total = 0;
  for (const auto& e : events) {
    const auto sum = checked_add(total, e.cost_micros);
    CANOPY_ASSERT(sum.has_value());
    total = *sum;
  }
  return total;
}

std::string_view name_of(PaymentKind kind) {
  switch (kind) {
    case PaymentKind::top_up: return "top_up";
    case PaymentKind::auto_recharge: return "auto_recharge";
    case PaymentKind::grant: return "grant";
    case PaymentKind::free_credits: return "free_credits";
    case PaymentKind::transfer_in: return "transfer_in";
    case PaymentKind::transfer_out: return "transfer_out";
  }
  return "grant";
}

std::string_view name_of(PaymentStatus status) {
  return status == PaymentStatus::succeeded ? "succeeded" : "failed";
}

namespace {

struct TouchedOrgs {
  std::vector<OrgId> operator()(const UserCreated&) const { return {}; }
  std::vector<OrgId> operator()(const WebhookAttempted&) const { return {}; }
  std::vector<OrgId> operator()(const OrgCreated& r) const { return {r.org}; }
  std::vector<OrgId> operator()(const ChargeBatch& r) const {
    std::vector<OrgId> out;
    out.reserve(r.chain.size());
    for (const auto& hop : r.chain) out.push_back(hop.org);
    return out;
  }
  std::vector<OrgId> operator()(const TransferRecorded& r) const { return {r.from, r.to}; }
  std::vector<OrgId> operator()(const auto& r) const { return {r.org}; }
};

}  // namespace

std::vector<OrgId> orgs_touched(const Record& record) { return std::visit(TouchedOrgs{}, record); }

OrgState make_org(const OrgCreated& r) {
  OrgState org;
  org.id = r.org;
  org.parent = r.parent;
  org.name = r.name;
  org.created_at = r.at;
  org.depth = r.depth;
  org.consolidated = r.parent != OrgId::none;  // sub-orgs start consolidated
  org.subscription = r.subscription;
  org.free_credits_recipient = r.free_credits_recipient;
  org.cycle = r.cycle;
  org.balance_micros = r.free_credits_micros;
  if (r.owner != UserId::none) org.members.push_back(Member{r.owner, Role::admin});
  return org;
}

void apply_rollover(OrgState& org, const CycleRolled& r) {
  if (r.cycle <= org.cycle) return;  // already in that cycle or later
  org.cycle = r.cycle;
  org.cycle_spend_micros = 0;
  org.paused_flag = false;
  const auto balance = checked_add(org.balance_micros, r.free_credits_micros);
  CANOPY_ASSERT(balance.has_value());
  org.balance_micros = *balance;
}

namespace {

void apply_member(OrgState& org, const MemberSet& r) {
  auto it = std::lower_bound(org.members.begin(), org.members.end(), r.user,
                             [](const Member& m, UserId u) { return raw(m.user) < raw(u); });
  const bool present = it != org.members.end() && it->user == r.user;
  if (!r.role) {
    if (present) org.members.erase(it);
  } else if (present) {
    it->role = *r.role;
  } else {
    org.members.insert(it, Member{r.user, *r.role});
  }
}

// A charge adds its cost to the cycle spend of every org on the chain that admitted it in the cycle
// it is still in (spend admitted in a cycle that has since ended belongs to that cycle, which is
// gone), and the payer's balance drops by it.
void apply_charge(OrgState& org, const ChargeBatch& r) {
  const Micros total = r.total_micros();
  for (const auto& hop : r.chain) {
    if (hop.org != org.id) continue;
    if (hop.cycle == org.cycle) {
      const auto spend = checked_add(org.cycle_spend_micros, total);
      CANOPY_ASSERT(spend.has_value());
      org.cycle_spend_micros = *spend;
    }
  }
  if (r.payer() == org.id) {
    org.balance_micros -= total;
    CANOPY_ASSERT(org.balance_micros >= 0);
  }
}

void apply_limit(OrgState& org, const LimitSet& r) {
  const bool raised = !r.limit_micros || !org.monthly_limit_micros || *r.limit_micros > *org.monthly_limit_micros;
  org.monthly_limit_micros = r.limit_micros;
  if (raised) org.paused_flag = false;  // raising (or removing) a limit lifts the pause
}

void apply_payment(OrgState& org, const PaymentRecorded& r) {
  if (r.status != PaymentStatus::succeeded) return;
  const auto balance = checked_add(org.balance_micros, r.amount_micros);
  CANOPY_ASSERT(balance.has_value());
  org.balance_micros = *balance;
}

void apply_transfer(OrgState& org, const TransferRecorded& r) {
  if (org.id == r.from) {
    org.balance_micros -= r.amount_micros;
    CANOPY_ASSERT(org.balance_micros >= 0);
  }
  if (org.id == r.to) {
    const auto balance = checked_add(org.balance_micros, r.amount_micros);
    CANOPY_ASSERT(balance.has_value());
    org.balance_micros = *balance;
  }
}

void apply_invitation_created(OrgState& org, const InvitationCreated& r) {
  std::erase_if(org.invitations, [&](const Invitation& inv) { return inv.expires_at <= r.invitation.created_at; });
  org.invitations.push_back(r.invitation);
}

void apply_invitation_accepted(OrgState& org, const InvitationAccepted& r) {
  std::erase_if(org.invitations, [&](const Invitation& inv) { return inv.id == r.invitation; });
  apply_member(org, MemberSet{org.id, r.user, r.role});
}

}  // namespace

std::optional<std::string> apply_refusal(const OrgState& org, const Record& record) {
  Micros debit = 0;
  Micros credit = 0;
  if (const auto* charge = std::get_if<ChargeBatch>(&record)) {
    Micros total = 0;
    for (const auto& e : charge->events) {
      const auto sum = checked_add(total, e.cost_micros);
      if (!sum || e.cost_micros < 0) return "a charge's costs overflow or are negative";
      total = *sum;
    }
    if (charge->payer() == org.id) debit = total;
    if (!checked_add(org.cycle_spend_micros, total)) return "cycle spend would overflow";
  } else if (const auto* transfer = std::get_if<TransferRecorded>(&record)) {
    if (transfer->amount_micros < 0) return "a negative transfer";
    if (transfer->from == org.id) debit = transfer->amount_micros;
    if (transfer->to == org.id) credit = transfer->amount_micros;
  } else if (const auto* payment = std::get_if<PaymentRecorded>(&record)) {
    if (payment->status == PaymentStatus::succeeded) credit = payment->amount_micros;
  } else if (const auto* rolled = std::get_if<CycleRolled>(&record)) {
    credit = rolled->free_credits_micros;
  }
  if (!checked_add(org.balance_micros, credit)) return "balance would overflow";
  if (org.balance_micros - debit < 0) {
    return "balance would go below zero (" + std::to_string(org.balance_micros) + " - " + std::to_string(debit) + ")";
  }
  return std::nullopt;
}

void apply(OrgState& org, const Record& record) {
  struct Visitor {
    OrgState& org;
    void operator()(const UserCreated&) const {}
    void operator()(const WebhookAttempted&) const {}
    void operator()(const AlertsSet& r) const { org.alerts = r.config; }
    void operator()(const WebhookCreated& r) const { org.webhooks.push_back(r.webhook); }
    void operator()(const WebhookDeleted& r) const {
      std::erase_if(org.webhooks, [&](const Webhook& w) { return w.id == r.webhook; });
    }
    void operator()(const OrgCreated& r) const { org = make_org(r); }
    void operator()(const OrgRenamed& r) const { org.name = r.name; }
    void operator()(const MemberSet& r) const { apply_member(org, r); }
    void operator()(const ChargeBatch& r) const { apply_charge(org, r); }
    void operator()(const PauseSet& r) const {
      if (r.cycle == org.cycle) org.paused_flag = true;
    }
    void operator()(const CycleRolled& r) const { apply_rollover(org, r); }
    void operator()(const LimitSet& r) const { apply_limit(org, r); }
    void operator()(const ConsolidatedSet& r) const { org.consolidated = r.enabled && !org.is_root(); }
    void operator()(const SubscriptionSet& r) const { org.subscription = r.plan; }
    void operator()(const PaymentMethodSet& r) const { org.payment_method = r.method; }
    void operator()(const AutoRechargeSet& r) const { org.auto_recharge = r.config; }
    void operator()(const PaymentRecorded& r) const { apply_payment(org, r); }
    void operator()(const TransferRecorded& r) const { apply_transfer(org, r); }
    void operator()(const CustomizationSet& r) const {
      org.name = r.name;
      org.customization = r.customization;
    }
    void operator()(const ShowCreditsSet& r) const { org.show_credits_balance = r.enabled; }
    void operator()(const ApiKeyCreated& r) const { org.api_keys.push_back(r.key); }
    void operator()(const ApiKeyRevoked& r) const {
      std::erase_if(org.api_keys, [&](const ApiKey& k) { return k.id == r.key; });
    }
    void operator()(const InvitationCreated& r) const { apply_invitation_created(org, r); }
    void operator()(const InvitationRevoked& r) const {
      std::erase_if(org.invitations, [&](const Invitation& inv) { return inv.id == r.invitation; });
    }
    void operator()(const InvitationAccepted& r) const { apply_invitation_accepted(org, r); }
  };
  std::visit(Visitor{org}, record);
}

}  // namespace canopy::domain
