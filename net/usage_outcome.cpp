#include "net/usage_outcome.hpp"

#include "net/metrics.hpp"

namespace canopy::net {

using namespace canopy::domain;
using actors::ChargeOutcome;
using actors::ChargeStatus;

Error refusal_error(const ChargeOutcome& o) {
  if (o.in_progress) return Error{Errc::conflict, "An event with this id is still being processed; retry"};
  switch (o.refusal) {
    case Refusal::module_disabled:
      return Error{Errc::module_disabled, "The module of this event type is not enabled for this organization"};
    case Refusal::limit_reached:
    case Refusal::paused:
      return Error{Errc::spending_limit_reached, "The monthly spending limit of an organization on the chain is reached",
                   {{"org_id", to_string(o.org)}}};
    case Refusal::insufficient_credits:
      return Error{Errc::insufficient_credits, "The paying organization's balance does not cover this event",
                   {{"org_id", to_string(o.org)}}};
    case Refusal::overflow:
      return Error{Errc::conflict, "The amounts involved are out of range", {{"org_id", to_string(o.org)}}};
    case Refusal::none: break;
  }
  return Error{Errc::internal, "Refused without a reason"};
}

void write_outcome(JsonWriter& w, const ChargeOutcome& o) {
  if (o.status == ChargeStatus::accepted) {
    w.key("status").string("accepted").key("payer_org_id").string(to_string(o.org));
    return;
  }
  w.key("status").string("refused").key("code").string(errc_name(refusal_error(o).code));
  w.key("org_id").string(to_string(o.org));
}

void count_outcome(const ChargeOutcome& o) {
  (o.status == ChargeStatus::accepted ? metrics().events_accepted : metrics().events_refused)
      .fetch_add(1, std::memory_order_relaxed);
}

}  // namespace canopy::net
