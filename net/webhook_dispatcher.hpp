// Delivers alerts to webhooks from the durable outbox (webhook_outbox, filled by the writer in the
// same commit as the change that raised the alert). At least once: a row leaves the outbox only by a
// journaled attempt that delivered it (2xx) or gave up after limits::webhook_retry_for; a failed
// attempt reschedules it with exponential backoff. A restart picks the outbox up where it was.
//
// Each POST carries `Canopy-Signature: t=<unix>,v1=<hex HMAC-SHA256("<t>.<body>")>` and the alert as
// `{id, type, org_id, created_at, data}`; a retry sends the same id (receivers dedupe by it). Every
// attempt is journaled (WebhookAttempted) and listed by GET …/webhooks/{wid}/deliveries.
//
// A detached actor (blocking HTTP); it polls the outbox every limits::webhook_poll_interval.
#pragma once

#include <caf/all.hpp>

#include "actors/services.hpp"

namespace canopy::net {

caf::actor spawn_webhook_dispatcher(actors::Services& services);

}  // namespace canopy::net
