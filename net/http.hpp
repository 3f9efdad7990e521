// The gateway's view of one HTTP exchange, independent of Beast, so handlers and tests need not
// know about sockets.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/errors.hpp"

namespace canopy::net {

enum class Method : std::uint8_t { get, post, put, patch, del, other };

struct HttpRequest {
  Method method = Method::other;
  std::string path;   // percent-decoding is not applied: ids and routes are plain ASCII
  std::string query;  // without '?'
  std::string authorization;
  std::string content_type;
  std::string idempotency_key;
  bool has_idempotency_key = false;
  std::string body;
};

struct HttpResponse {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

// Thread-safe; the first call wins, later ones are ignored (a deadline may have answered already).
using Respond = std::function<void(HttpResponse)>;

// The HTTP status of each domain error: the one place it is decided.
unsigned http_status(domain::Errc code);
HttpResponse error_response(const domain::Error& error);
// The error without detail entries that carry money (keys ending in `_micros`), for callers under the
// show-credits rule.
domain::Error without_money(domain::Error error);
HttpResponse json_response(unsigned status, std::string body);
// 204 No Content: no body, no content type.
HttpResponse no_content();

// The decoded value of `name` in a query string; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

}  // namespace canopy::net
