// The charge decision, one org of the chain at a time.
//
// An event for org O is accepted only if, for every org on the chain from O up to its payer P:
//   - the org is not paused, and cycle spend + in-flight reservations + cost <= its monthly limit;
// and at P, balance - in-flight debits >= cost. Each org actor checks its own part and *reserves*
// the cost before passing the event up, so two events racing through the same org can never both be
// admitted against the same headroom: reservations count as spent until the payer's decision comes
// back down and turns them into spend (accepted) or releases them (refused).
//
// The functions here are pure; the org actor owns the numbers and the order.
#pragma once

#include <optional>
#include <string_view>

#include "domain/org.hpp"

namespace canopy::domain {

// Amounts an org actor has promised to events still in flight through it. Volatile: never persisted,
// because an event in flight has not been acknowledged and is simply gone after a crash.
struct InFlight {
  Micros spend_reserved_micros = 0;  // admitted in the org's current cycle: counts against its limit
  Micros debit_reserved_micros = 0;  // counts against this org's balance (only when it pays)
  // Admitted in a cycle that has since ended: such spend belongs to that cycle (apply() adds it there,
  // i.e. nowhere), so it must not count against the new cycle's limit either.
  Micros spend_reserved_earlier_micros = 0;
};

enum class Refusal : std::uint8_t {
  none,
  module_disabled,
  limit_reached,         // cost would pass the limit: the org pauses
  paused,                // the org was already paused
  insufficient_credits,  // the payer's balance does not cover the cost
  overflow,              // sums past what int64 holds: refused, never wrapped
};

// The limit part, at any org on the chain.
Refusal admit_limit(const OrgState& org, const InFlight& in_flight, Micros cost_micros);
// The balance part, at the payer, after its limit part passed.
Refusal admit_balance(const OrgState& payer, const InFlight& in_flight, Micros cost_micros);

// What the balance view shows: the balance less what is promised to events in flight.
inline Micros available_balance(const OrgState& org, const InFlight& in_flight) {
  return org.balance_micros - in_flight.debit_reserved_micros;
}

// Percent of the monthly limit used this cycle, rounded half up to one decimal (e.g. 6.0, 33.3);
// nullopt without a limit. A zero limit reads as 100% once anything is spent, 0% otherwise.
std::optional<double> percent_used(const OrgState& org);

// Module part: `type` is `<module>.<action>`; the module must be effective for the org.
// `effective` is the org's effective module set (enabled here and, for gated modules, up the tree).
std::optional<Module> module_of_event_type(std::string_view type);

}  // namespace canopy::domain
