#include "domain/rules.hpp"

#include <algorithm>

#include "config/limits.hpp"

namespace canopy::domain {

std::size_t payer_index(Lineage lineage) {
  for (std::size_t i = 0; i < lineage.size(); ++i) {
    if (lineage[i]->pays_for_itself()) return i;
  }
  CANOPY_ASSERT(false && "a lineage always ends at a root, which pays for itself");
}

Plan effective_plan(Lineage lineage) {
  CANOPY_ASSERT(!lineage.empty());
  if (lineage[0]->subscription) return *lineage[0]->subscription;
  if (lineage[0]->pays_for_itself()) return Plan::free;
  const OrgState* payer = lineage[payer_index(lineage)];
  return payer->subscription.value_or(Plan::free);
}

ModuleSet effective_modules(Lineage lineage) {
  CANOPY_ASSERT(!lineage.empty());
  // Walk down from the root: each level keeps what it enables, gated modules only if the parent has them.
  const OrgState* root = lineage.back();
  ModuleSet effective = plan_modules(root->subscription.value_or(Plan::free));
  for (std::size_t i = lineage.size() - 1; i-- > 0;) {
    ModuleSet here = lineage[i]->modules_enabled;
    for (std::size_t m = 0; m < module_count; ++m) {
      const auto module = static_cast<Module>(m);
      if (parent_gated(module) && !(effective & bit(module))) here = static_cast<ModuleSet>(here & ~bit(module));
    }
    effective = here;
  }
  return effective;
}

std::optional<Error> check_create_sub_org(Lineage parent_lineage, std::uint32_t max_depth) {
  CANOPY_ASSERT(!parent_lineage.empty());
  const OrgState* root = parent_lineage.back();
  if (!plan_allows_sub_orgs(root->subscription.value_or(Plan::free))) {
    return Error{Errc::plan_required, "Sub-organizations require a Business or Enterprise plan on the root organization"};
  }
  const std::uint32_t depth = parent_lineage[0]->depth + 1u;
  if (depth > max_depth) {
    return Error{Errc::depth_exceeded,
                 "Sub-organizations may nest at most " + std::to_string(max_depth) + " levels below a root",
                 {{"max_depth", static_cast<std::int64_t>(max_depth)}}};
  }
  return std::nullopt;
}

std::optional<Error> check_set_consolidated(const OrgState& org) {
  if (org.is_root()) return Error{Errc::conflict, "A root organization always pays for itself"};
  return std::nullopt;
}

std::optional<Error> check_amount(std::string_view field, Micros amount) {
  if (amount <= 0 || amount > limits::amount_micros_max) {
    return invalid_field(std::string(field), std::string(field) + " must be from 1 to " +
                                                 std::to_string(limits::amount_micros_max));
  }
  return std::nullopt;
}

std::optional<Error> check_limit(Micros limit) {
  if (limit < 0 || limit > limits::amount_micros_max) {
    return invalid_field("monthly_limit_micros",
                         "monthly_limit_micros must be from 0 to " + std::to_string(limits::amount_micros_max) + " or null");
  }
  return std::nullopt;
}

std::optional<Error> check_payment_method(const PaymentMethod& m, Timestamp now) {
  if (m.brand.empty() || m.brand.size() > 32 ||
      !std::all_of(m.brand.begin(), m.brand.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == ' ' || c == '_'; })) {
    return invalid_field("brand", "brand must be a card brand name such as visa or mastercard");
  }
  if (m.last4.size() != 4 || !std::all_of(m.last4.begin(), m.last4.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return invalid_field("last4", "last4 must be exactly the last 4 digits of the card");
  }
  if (m.exp_month < 1 || m.exp_month > 12) return invalid_field("exp_month", "exp_month must be 1 to 12");
  const CivilDate today = civil_from_days(day_of(now));
  if (m.exp_year > 9999 || m.exp_year < today.year ||
      (m.exp_year == today.year && m.exp_month < today.month)) {
    return invalid_field("exp_year", "the card has expired");
  }
  return std::nullopt;
}

std::variant<Error, PaymentMethod> payment_method_from(std::string brand, std::string last4, std::int64_t exp_month,
                                                       std::int64_t exp_year) {
  if (exp_month < 1 || exp_month > 12) return invalid_field("exp_month", "exp_month must be 1 to 12");
  if (exp_year < 1970 || exp_year > 9999) return invalid_field("exp_year", "exp_year must be a 4-digit year");
  return PaymentMethod{std::move(brand), std::move(last4), static_cast<std::uint8_t>(exp_month),
                       static_cast<std::uint16_t>(exp_year)};
}

std::optional<Error> check_auto_recharge(const OrgState& org, const AutoRecharge& config) {
  if (config.threshold_micros < 0 || config.threshold_micros > limits::amount_micros_max) {
    return invalid_field("threshold_micros", "threshold_micros must be from 0 to " + std::to_string(limits::amount_micros_max));
  }
  if (config.enabled) {
    if (auto err = check_amount("amount_micros", config.amount_micros)) return err;
  } else if (config.amount_micros < 0 || config.amount_micros > limits::amount_micros_max) {
    return invalid_field("amount_micros", "amount_micros must be from 0 to " + std::to_string(limits::amount_micros_max));
  }
  if (config.enabled && !org.payment_method) {
    return Error{Errc::payment_method_required, "Add a payment method before enabling auto-recharge"};
  }
  return std::nullopt;
}

std::optional<Error> check_top_up(const OrgState& org) {
  if (!org.payment_method) return Error{Errc::payment_method_required, "Add a payment method before topping up"};
  return std::nullopt;
}

std::optional<Error> check_transfer(const OrgState& from, Micros available_micros, Lineage to_lineage, Micros amount) {
  if (auto err = check_amount("amount_micros", amount)) return err;
  const bool below = std::any_of(to_lineage.begin() + (to_lineage.empty() ? 0 : 1), to_lineage.end(),
                                 [&](const OrgState* o) { return o->id == from.id; });
  if (to_lineage.empty() || !below) {
    return Error{Errc::not_found, "to_org_id is not a sub-organization of this organization", {{"field", "to_org_id"}}};
  }
  if (!to_lineage[0]->pays_for_itself()) {
    return Error{Errc::conflict, "Funds can only be distributed to a sub-organization that pays for itself "
                                 "(consolidated billing off)", {{"field", "to_org_id"}}};
  }
  if (available_micros < amount) {
    return Error{Errc::transfer_insufficient_credits, "The available balance does not cover the transfer",
                 {{"available_balance_micros", std::to_string(available_micros)}}};
  }
  return std::nullopt;
}

std::optional<Error> check_show_credits(const OrgState& org, bool enabled) {
  if (enabled && !org.monthly_limit_micros) {
    return Error{Errc::spending_limit_required,
                 "Set a monthly spending limit first: with show credits on, members see the percentage of it used"};
  }
  return std::nullopt;
}

}  // namespace canopy::domain
