#include "domain/charge.hpp"

#include <cmath>

namespace canopy::domain {

Refusal admit_limit(const OrgState& org, const InFlight& in_flight, Micros cost_micros) {
  CANOPY_ASSERT(cost_micros >= 0);
  if (org.paused()) return Refusal::paused;
  if (!org.monthly_limit_micros) return Refusal::none;
  const auto committed = checked_add(org.cycle_spend_micros, in_flight.spend_reserved_micros);
  if (!committed) return Refusal::overflow;
  const auto after = checked_add(*committed, cost_micros);
  if (!after) return Refusal::overflow;
  return *after <= *org.monthly_limit_micros ? Refusal::none : Refusal::limit_reached;
}

Refusal admit_balance(const OrgState& payer, const InFlight& in_flight, Micros cost_micros) {
  CANOPY_ASSERT(cost_micros >= 0);
  const auto available = checked_sub(payer.balance_micros, in_flight.debit_reserved_micros);
  if (!available) return Refusal::overflow;
  return *available >= cost_micros ? Refusal::none : Refusal::insufficient_credits;
}

std::optional<double> percent_used(const OrgState& org) {
  if (!org.monthly_limit_micros) return std::nullopt;
  const Micros limit = *org.monthly_limit_micros;
  if (limit == 0) return org.cycle_spend_micros > 0 ? 100.0 : 0.0;
  // Tenths of a percent in integers, rounded half up, so 1/3 reads 33.3 on every machine.
  __extension__ using wide = __int128;
  const wide tenths = (static_cast<wide>(org.cycle_spend_micros) * 2000 + limit) / (wide{2} * limit);
  return static_cast<double>(static_cast<std::int64_t>(tenths)) / 10.0;
}

std::optional<Module> module_of_event_type(std::string_view type) {
  const auto dot = type.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  return parse_module(type.substr(0, dot));
}

}  // namespace canopy::domain
