// The invitation email, as its recipient sees it: branded from the inviting org's OWN customization
// (never its parent's) and linking through the org's OWN verified custom domain when it has one.
//
// Pure composition: no I/O. net/mail.hpp turns it into an RFC 5322 message and delivers it.
#pragma once

#include <string>
#include <string_view>

#include "domain/org.hpp"
#include "domain/time.hpp"

namespace canopy::domain {

struct InvitationEmail {
  std::string from_name;     // the org's name
  std::string from_address;  // the org's contact email, else the configured sender
  std::string to;
  std::string subject;
  std::string link;          // <base>/invite/<token>
  std::string html;
  std::string text;          // the same content as plain text

  // `"Name" <address>` as an RFC 5322 From header value (the name quoted and escaped).
  std::string from() const;
};

// `https://<hostname>` when the org has a verified custom domain, else `public_url` (no trailing slash).
std::string invitation_base_url(const OrgState& org, std::string_view public_url);

// `inviter_name` is who sent it (empty when the operator did). `default_sender` is used when the org
// has no contact email.
InvitationEmail compose_invitation_email(const OrgState& org, const Invitation& invitation, std::string_view token,
                                         std::string_view inviter_name, std::string_view public_url,
                                         std::string_view default_sender);

// Escapes &, <, >, " and ' for HTML text and attribute values.
std::string html_escape(std::string_view text);

}  // namespace canopy::domain
