// What a charge's outcome means on the wire, shared by HTTP (handlers_usage.cpp) and the WebSocket
// stream (ws_session.cpp): the error of a refusal, a result's fields, and the accepted/refused counters.
#pragma once

#include "actors/messages.hpp"
#include "domain/errors.hpp"
#include "net/json_out.hpp"

namespace canopy::net {

domain::Error refusal_error(const actors::ChargeOutcome& outcome);
// Its code alone, without building the message (a batch answer writes one per refused event).
domain::Errc refusal_code(const actors::ChargeOutcome& outcome);
void count_outcome(const actors::ChargeOutcome& outcome);
// The fields of a result after the event's id: "status":"accepted","payer_org_id":… or
// "status":"refused","code":…,"org_id":… (the org that refused it).
void write_outcome(JsonWriter& w, const actors::ChargeOutcome& outcome);

}  // namespace canopy::net
