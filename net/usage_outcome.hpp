// What a charge's outcome means on the wire, shared by HTTP (handlers_usage.cpp) and the WebSocket
// stream (ws_session.cpp): the error of a refusal, and the accepted/refused counters.
#pragma once

#include "actors/messages.hpp"
#include "domain/errors.hpp"

namespace canopy::net {

domain::Error refusal_error(const actors::ChargeOutcome& outcome);
void count_outcome(const actors::ChargeOutcome& outcome);

}  // namespace canopy::net
