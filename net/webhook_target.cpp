#include "net/webhook_target.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>

#include <memory>

#include "domain/alerts.hpp"

namespace canopy::net {

std::variant<std::string, WebhookTarget> resolve_webhook_target(const std::string& url, bool allow_private) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> parsed(curl_url(), curl_url_cleanup);
  if (!parsed || curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return std::string("url must be an absolute http:// or https:// URL");
  }
  const auto part = [&](CURLUPart which, unsigned flags = 0) -> std::string {
    char* value = nullptr;
    if (curl_url_get(parsed.get(), which, &value, flags) != CURLUE_OK || !value) return {};
    std::string out(value);
    curl_free(value);
    return out;
  };
  const std::string scheme = part(CURLUPART_SCHEME);
  if (scheme != "http" && scheme != "https") return std::string("url must be an http:// or https:// URL");
  if (!part(CURLUPART_USER).empty()) return std::string("url must not carry credentials");
  WebhookTarget target;
  target.host = part(CURLUPART_HOST);
  if (target.host.empty()) return std::string("url must name a host");
  target.port = static_cast<unsigned>(std::stoul(part(CURLUPART_PORT, CURLU_DEFAULT_PORT)));
  if (target.port == 0) return std::string("url's port must be between 1 and 65535");
  std::string lookup = target.host;
  if (lookup.size() > 2 && lookup.front() == '[' && lookup.back() == ']') lookup = lookup.substr(1, lookup.size() - 2);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(lookup.c_str(), nullptr, &hints, &found); rc != 0) {
    return "url's host " + target.host + " does not resolve: " + gai_strerror(rc);
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> results(found, freeaddrinfo);
  for (const addrinfo* a = found; a; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {0};
    bool is_private = true;
    if (a->ai_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
      is_private = domain::is_private_address(reinterpret_cast<const std::uint8_t*>(&in->sin_addr), 4);
      inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    } else if (a->ai_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
      is_private = domain::is_private_address(reinterpret_cast<const std::uint8_t*>(&in6->sin6_addr), 16);
      inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    } else {
      continue;
    }
    if (is_private && !allow_private) {
      return "url's host " + target.host + " resolves to " + text +
             ", a loopback, private or link-local address (start with --allow-private-webhooks to allow it)";
    }
    target.addresses.emplace_back(text);
  }
  if (target.addresses.empty()) return "url's host " + target.host + " has no IPv4 or IPv6 address";
  return target;
}

}  // namespace canopy::net
