#include "net/views.hpp"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "domain/charge.hpp"
#include "domain/rules.hpp"

namespace canopy::net {

using namespace canopy::domain;
using actors::OrgPtr;
using actors::raw_lineage;

namespace {

OrgState current(const actors::Services& services, const OrgState& org, Timestamp now) {
  return view_at(org, now, services.options.free_credits_micros);
}

std::string payer_id(const std::vector<OrgPtr>& lineage) {
  const auto r = raw_lineage(lineage);
  return to_string(r[payer_index(r)]->id);
}

void write_percent(JsonWriter& w, const OrgState& org) {
  w.key("percent");
  if (auto p = percent_used(org)) {
    w.decimal1(*p);
  } else {
    w.null();
  }
}

// The billing summary of an org and of a sub-org row: consolidated orgs show their cycle spend,
// self-paying ones their balance; under show-credits, the percent of the limit instead.
void write_billing_summary(JsonWriter& w, const OrgState& org, const std::vector<OrgPtr>& lineage, bool hide,
                           bool with_payer) {
  w.begin_object();
  w.key("plan").string(name_of(effective_plan(raw_lineage(lineage))));
  w.key("consolidated").boolean(!org.pays_for_itself());
  if (with_payer) w.key("payer_org_id").string(payer_id(lineage));
  if (hide) {
    write_percent(w, org);
  } else if (org.pays_for_itself()) {
    w.key("balance_micros").integer(org.balance_micros);
  } else {
    w.key("spend_micros").integer(org.cycle_spend_micros);
  }
  w.end_object();
}

void write_logo_url(JsonWriter& w, const OrgState& org) {
  w.key("logo_url");
  if (org.customization.logo_url.empty()) {
    w.null();
  } else {
    w.string(org.customization.logo_url);
  }
}

// The hostname, once set (verified or not; the domain endpoints tell its status).
void write_custom_domain(JsonWriter& w, const OrgState& org) {
  w.key("custom_domain");
  if (org.custom_domain) {
    w.string(org.custom_domain->hostname);
  } else {
    w.null();
  }
}

}  // namespace

bool hides_money(const OrgState& org, const Access& access) {
  return org.show_credits_balance && access.direct_member_only();
}

void write_org(JsonWriter& w, const actors::Services& services, const std::vector<OrgPtr>& lineage,
               const Access& access, Timestamp now, bool hide_from_above) {
  const OrgState org = current(services, *lineage.front(), now);
  const bool hide = hide_from_above || hides_money(org, access);
  w.begin_object();
  w.key("id").string(to_string(org.id));
  w.key("name").string(org.name);
  w.key("parent_id");
  if (org.is_root()) {
    w.null();
  } else {
    w.string(to_string(org.parent));
  }
  w.key("plan").string(name_of(effective_plan(raw_lineage(lineage))));
  write_logo_url(w, org);
  write_custom_domain(w, org);
  w.key("member_count").unsigned_integer(org.members.size());
  w.key("created_at").string(format_rfc3339(org.created_at));
  w.key("billing");
  write_billing_summary(w, org, lineage, hide, true);
  w.end_object();
}

void write_indicator(JsonWriter& w, const actors::Services& services, const OrgState& stored, Timestamp now) {
  const OrgState org = current(services, stored, now);
  w.begin_object();
  if (org.show_credits_balance) {
    w.key("kind").string("usage");
    write_percent(w, org);
  } else {
    w.key("kind").string("balance").key("balance_micros").integer(org.balance_micros);
  }
  w.end_object();
}

void write_billing(JsonWriter& w, const actors::Services& services, const std::vector<OrgPtr>& lineage,
                   const Access& access, Timestamp now) {
  const OrgState org = current(services, *lineage.front(), now);
  const bool hide = hides_money(org, access);
  w.begin_object();
  w.key("consolidated").boolean(!org.pays_for_itself());
  w.key("payer_org_id").string(payer_id(lineage));
  w.key("subscription");
  if (org.subscription) {
    w.begin_object().key("plan").string(name_of(*org.subscription)).key("status").string("active").end_object();
  } else {
    w.null();
  }
  if (!hide) {
    w.key("available_balance_micros").integer(org.balance_micros);
    w.key("held_micros").integer(0);
    w.key("monthly_spending_limit_micros").optional_integer(org.monthly_limit_micros);
  }
  w.key("cycle").begin_object();
  w.key("start").string(format_rfc3339(cycle_start(org.cycle)));
  w.key("end").string(format_rfc3339(cycle_end(org.cycle)));
  if (!hide) w.key("spend_micros").integer(org.cycle_spend_micros);
  w.key("paused").boolean(org.paused());
  write_percent(w, org);
  w.end_object();
  w.key("payment_method");
  if (org.payment_method) {
    const auto& m = *org.payment_method;
    w.begin_object().key("brand").string(m.brand).key("last4").string(m.last4);
    w.key("exp_month").integer(m.exp_month).key("exp_year").integer(m.exp_year).end_object();
  } else {
    w.null();
  }
  w.key("auto_recharge").begin_object().key("enabled").boolean(org.auto_recharge.enabled);
  if (!hide) {
    w.key("threshold_micros").integer(org.auto_recharge.threshold_micros);
    w.key("amount_micros").integer(org.auto_recharge.amount_micros);
  }
  w.end_object();
  w.key("redundant_subscription").boolean(org.redundant_subscription());
  w.end_object();
}

void write_sub_org_row(JsonWriter& w, const actors::Services& services, const std::vector<OrgPtr>& lineage,
                       const Access& access, Timestamp now, bool hide_from_above) {
  const OrgState org = current(services, *lineage.front(), now);
  const bool hide = hide_from_above || hides_money(org, access);
  w.begin_object();
  w.key("id").string(to_string(org.id));
  w.key("name").string(org.name);
  write_logo_url(w, org);
  w.key("billing");
  write_billing_summary(w, org, lineage, hide, false);
  write_custom_domain(w, org);
  w.key("member_count").unsigned_integer(org.members.size());
  w.key("redundant_subscription").boolean(org.redundant_subscription());
  w.end_object();
}

void write_balance_event(JsonWriter& w, const OrgState& org, bool hide, std::uint64_t seq) {
  w.begin_object();
  w.key("type").string("balance");
  w.key("org_id").string(to_string(org.id));
  w.key("seq").unsigned_integer(seq);
  if (!hide) {
    w.key("available_balance_micros").integer(org.balance_micros);
    w.key("cycle_spend_micros").integer(org.cycle_spend_micros);
    w.key("monthly_spending_limit_micros").optional_integer(org.monthly_limit_micros);
  }
  w.key("paused").boolean(org.paused());
  write_percent(w, org);
  w.end_object();
}

void write_payment(JsonWriter& w, const persistence::PaymentRow& p, bool hide) {
  w.begin_object();
  w.key("id").string(to_string(p.id));
  w.key("kind").string(name_of(p.kind));
  if (!hide) w.key("amount_micros").integer(p.amount_micros);
  w.key("status").string(name_of(p.status));
  w.key("created_at").string(format_rfc3339(p.at));
  if (p.counterparty != OrgId::none) w.key("counterparty_org_id").string(to_string(p.counterparty));
  w.end_object();
}

namespace {

// The switcher: every org the user reaches (a membership, or below an org where they are admin),
// grouped under the topmost reachable org of each branch.
struct Switcher {
  const actors::Services& services;
  actors::Principal principal;
  std::unordered_set<OrgId> reachable;

  void write_node(JsonWriter& w, const OrgPtr& org) const {
    const auto lineage = services.directory.lineage(org->id);
    const auto access = services.directory.access(principal, lineage);
    w.begin_object();
    w.key("id").string(to_string(org->id));
    w.key("name").string(org->name);
    w.key("plan").string(name_of(effective_plan(raw_lineage(lineage))));
    w.key("role").string(access.direct_role ? name_of(*access.direct_role) : name_of(Role::admin));
    w.key("sub_organizations").begin_array();
    for (const auto& child : services.directory.children(org->id)) {
      if (reachable.count(child->id)) write_node(w, child);
    }
    w.end_array();
    w.end_object();
  }
};

}  // namespace

void write_me(JsonWriter& w, const actors::Services& services, const actors::UserInfo& user) {
  Switcher s{services, actors::Principal{actors::Principal::Kind::user, user.id, OrgId::none, KeyId::none}, {}};
  std::vector<OrgPtr> tops;
  for (const OrgId id : services.directory.memberships(user.id)) {
    auto org = services.directory.org(id);
    if (!org) continue;
    s.reachable.insert(id);
    if (const auto* m = org->find_member(user.id); m && m->role == Role::admin) {
      for (const auto& d : services.directory.descendants(id)) s.reachable.insert(d->id);
    }
  }
  for (const OrgId id : s.reachable) {
    auto org = services.directory.org(id);
    if (org && (org->is_root() || !s.reachable.count(org->parent))) tops.push_back(org);
  }
  std::sort(tops.begin(), tops.end(), [](const OrgPtr& a, const OrgPtr& b) {
    return a->created_at != b->created_at ? a->created_at < b->created_at : raw(a->id) < raw(b->id);
  });
  w.begin_object();
  w.key("id").string(to_string(user.id));
  w.key("email").string(user.email);
  w.key("name").string(user.name);
  w.key("organizations").begin_array();
  for (const auto& org : tops) s.write_node(w, org);
  w.end_array();
  w.end_object();
}

}  // namespace canopy::net
