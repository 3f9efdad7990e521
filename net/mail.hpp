// Outgoing email: an RFC 5322 / MIME message built from a composed email, and its delivery, either
// over SMTP (libcurl; smtp:// with STARTTLS when offered, or smtps://) or as an .eml file in the
// outbox folder when no SMTP server is configured.
//
// Blocking I/O: called only from the mailer actor (mailer.hpp), never on a gateway or org thread.
#pragma once

#include <string>
#include <string_view>

#include "domain/invitation_email.hpp"

namespace canopy::net {

struct OutgoingMail {
  std::string from_address;  // envelope sender
  std::string to;            // envelope recipient
  std::string message;       // the whole message, CRLF line endings
  std::string file_stem;     // outbox file name without extension (unique per message)
};

// Headers (From, To, Subject, Date, Message-ID, MIME-Version) and a multipart/alternative body with
// the text and HTML parts, each base64 in 76-character lines (so no line exceeds SMTP's 998 limit).
// Non-ASCII display names and subjects are RFC 2047 encoded words.
std::string format_message(const domain::InvitationEmail& mail, domain::Timestamp now, std::string_view message_id);

// Standard base64 (RFC 4648), no line breaks.
std::string base64(std::string_view bytes);

struct DeliveryResult {
  bool ok = false;
  std::string error;  // why not, for the log
};

DeliveryResult send_smtp(const std::string& smtp_url, const OutgoingMail& mail);
// Writes <dir>/<file_stem>.eml atomically (a temporary file renamed into place), creating `dir`.
DeliveryResult write_eml(const std::string& dir, const OutgoingMail& mail);

}  // namespace canopy::net
