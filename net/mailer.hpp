// The mailer: a detached actor that delivers outgoing email off the request path.
//
// A handler hands it a formatted message once the invitation is durable and answers 201 at once; the
// mailer sends it over SMTP (options.smtp_url) or writes it to the outbox folder, retrying a failed
// SMTP delivery limits::mail_attempts_max times with the delay doubling from limits::mail_retry_first.
// Delivery is best-effort after the 201: a message still being retried when the process stops is
// lost (the invitation itself is not, and the response carried its link and email).
//
// Messages: mail_atom + OutgoingMail + attempt (0 for a new message).
#pragma once

#include <caf/all.hpp>

#include "actors/services.hpp"
#include "config/options.hpp"
#include "net/mail.hpp"

namespace canopy::net {

using mail_atom = caf::atom_constant<caf::atom("mail")>;

caf::actor spawn_mailer(caf::actor_system& system, const config::Options& options, actors::MailStats& stats);

}  // namespace canopy::net

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(canopy::net::OutgoingMail)
