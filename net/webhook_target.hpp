// Where a webhook may point: an http(s) URL whose host does not resolve to a loopback, private or
// link-local address (domain::is_private_address), unless private targets are allowed
// (--allow-private-webhooks). Checked when the webhook is registered and again at every delivery,
// which then connects to the address it checked (so DNS cannot be switched in between).
#pragma once

#include <string>
#include <variant>
#include <vector>

namespace canopy::net {

struct WebhookTarget {
  std::string host;
  unsigned port = 0;
  std::vector<std::string> addresses;  // numeric, vetted
};

// Blocking (DNS). The error names what is wrong, for a 400 or a failed attempt.
std::variant<std::string, WebhookTarget> resolve_webhook_target(const std::string& url, bool allow_private);

}  // namespace canopy::net
