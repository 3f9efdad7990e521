// Rules about organizations and billing that are not the per-event charge decision (charge.hpp):
// what plan and modules an org effectively has, when a sub-org may be created, and the
// preconditions of billing commands. Pure functions; actors call them and act on the answer.
//
// A lineage is an org followed by each of its ancestors up to the root (Directory::lineage).
#pragma once

#include <optional>
#include <span>
#include <variant>

#include "domain/org.hpp"

namespace canopy::domain {

using Lineage = std::span<const OrgState* const>;

// The plan an org runs on: its own subscription, else (consolidated) its payer's, else free.
Plan effective_plan(Lineage lineage);
// A root has every module its plan pays for; a sub-org has what it enables, and a parent-gated module
// only where it is effective on the parent too.
ModuleSet effective_modules(Lineage lineage);
// Index in the lineage of the org that pays (the first that pays for itself).
std::size_t payer_index(Lineage lineage);

// Sub-orgs need the root's plan to be business or enterprise (403 plan_required) and may not be
// deeper than `max_depth` levels below the root (422 depth_exceeded). lineage[0] is the new parent.
std::optional<Error> check_create_sub_org(Lineage parent_lineage, std::uint32_t max_depth);
// A root always pays for itself.
std::optional<Error> check_set_consolidated(const OrgState& org);
// "Show credits balance" shows members percentages of the monthly limit instead of dollars, so it can
// only be turned on where there is a limit (409 spending_limit_required).
std::optional<Error> check_show_credits(const OrgState& org, bool enabled);
// Amounts of grants, top-ups, transfers and auto-recharge: 1 .. limits::amount_micros_max.
std::optional<Error> check_amount(std::string_view field, Micros amount);
// Limits: 0 .. limits::amount_micros_max, or none.
std::optional<Error> check_limit(Micros limit);
// Card metadata only: brand, 4-digit last4, a month and a year not in the past.
std::optional<Error> check_payment_method(const PaymentMethod& method, Timestamp now);
// Builds the metadata from request values, refusing a month or year that does not fit its field;
// check_payment_method() decides the rest when the org applies it.
std::variant<Error, PaymentMethod> payment_method_from(std::string brand, std::string last4, std::int64_t exp_month,
                                                       std::int64_t exp_year);
// Auto-recharge needs a payment method; threshold >= 0; the amount within check_amount when enabled
// (0 is fine when disabled).
std::optional<Error> check_auto_recharge(const OrgState& org, const AutoRecharge& config);
// Top-ups need a payment method.
std::optional<Error> check_top_up(const OrgState& org);
// Distribute funds: to a strict descendant that pays for itself, covered by the available balance.
// `to_lineage` is the target's lineage (it must contain `from`).
std::optional<Error> check_transfer(const OrgState& from, Micros available_micros, Lineage to_lineage, Micros amount);

}  // namespace canopy::domain
