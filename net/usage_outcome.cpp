#include "net/usage_outcome.hpp"

#include "net/metrics.hpp"

namespace canopy::net {

using namespace canopy::domain;
using actors::ChargeOutcome;
using actors::ChargeStatus;

Errc refusal_code(const ChargeOutcome& o) {
  if (o.in_progress) return Errc::conflict;
  switch (o.refusal) {
    case Refusal::module_disabled: return Errc::module_disabled;
    case Refusal::limit_reached:
    case Refusal::paused: return Errc::spending_limit_reached;
    case Refusal::insufficient_credits: return Errc::insufficient_credits;
    case Refusal::overflow: return Errc::conflict;
    case Refusal::none: break;
  }
  return Errc::internal;
}

Error refusal_error(const ChargeOutcome& o) {
  const Errc code = refusal_code(o);
  if (o.in_progress) return Error{code, "An event with this id is still being processed; retry"};
  switch (o.refusal) {
    case Refusal::module_disabled:
      return Error{code, "The module of this event type is not enabled for this organization"};
    case Refusal::limit_reached:
    case Refusal::paused:
      return Error{code, "The monthly spending limit of an organization on the chain is reached",
                   {{"org_id", to_string(o.org)}}};
    case Refusal::insufficient_credits:
      return Error{code, "The paying organization's balance does not cover this event",
                   {{"org_id", to_string(o.org)}}};
    case Refusal::overflow:
      return Error{code, "The amounts involved are out of range", {{"org_id", to_string(o.org)}}};
    case Refusal::none: break;
  }
  return Error{code, "Refused without a reason"};
}

void write_outcome(JsonWriter& w, const ChargeOutcome& o) {
  if (o.status == ChargeStatus::accepted) {
    w.key("status").string("accepted").key("payer_org_id").id(org_prefix, raw(o.org));
    return;
  }
  w.key("status").string("refused").key("code").string(errc_name(refusal_code(o)));
  w.key("org_id").id(org_prefix, raw(o.org));
}

void count_outcome(const ChargeOutcome& o) {
  (o.status == ChargeStatus::accepted ? metrics().events_accepted : metrics().events_refused)
      .fetch_add(1, std::memory_order_relaxed);
}

}  // namespace canopy::net
