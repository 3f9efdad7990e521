#include "net/router.hpp"

#include <algorithm>
#include <cctype>
#include <exception>

namespace canopy::net {

using domain::Errc;
using domain::Error;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "application/json", in any case, with or without parameters; a charset, if named, is UTF-8 (JSON
// bodies are UTF-8, RFC 8259 §8.1: a body declared otherwise would be read as something it is not).
bool is_json_media_type(std::string_view content_type) {
  std::size_t semicolon = content_type.find(';');
  if (!iequals(trim(content_type.substr(0, semicolon)), "application/json")) return false;
  while (semicolon != std::string_view::npos) {
    content_type.remove_prefix(semicolon + 1);
    semicolon = content_type.find(';');
    const std::string_view parameter = trim(content_type.substr(0, semicolon));
    const std::size_t equals = parameter.find('=');
    if (equals == std::string_view::npos || !iequals(trim(parameter.substr(0, equals)), "charset")) continue;
    std::string_view charset = trim(parameter.substr(equals + 1));
    if (charset.size() >= 2 && charset.front() == '"' && charset.back() == '"') charset = charset.substr(1, charset.size() - 2);
    if (!iequals(charset, "utf-8")) return false;
  }
  return true;
}

}  // namespace

std::optional<actors::Principal> authenticate(const actors::Services& services, std::string_view header) {
  // The auth scheme is case-insensitive (RFC 9110 §11.1); the token is not.
  const auto space = header.find(' ');
  if (space == std::string_view::npos || !iequals(header.substr(0, space), "Bearer")) return std::nullopt;
  const auto token = trim(header.substr(space + 1));
  if (token.empty()) return std::nullopt;
  return services.directory.principal_for(domain::hash_token(token));
}

namespace {

std::vector<Route> all_routes() {
  std::vector<Route> routes;
  add_org_routes(routes);
  add_billing_routes(routes);
  add_usage_routes(routes);
  add_ops_routes(routes);
  add_member_routes(routes);
  add_key_routes(routes);
  add_settings_routes(routes);
  add_usage_report_routes(routes);
  add_alert_routes(routes);
  return routes;
}

}  // namespace

Router::Router(actors::Services& services) : services_(services), routes_(all_routes()) {}

void Router::handle(HttpRequest& request, Respond respond) const {
  auto [found, params, allow] = routes_.find(request.method, request.path);
  if (!found) {
    if (!allow.empty()) {
      auto response = error_response(Error{Errc::method_not_allowed, "Method not allowed on " + request.path});
      response.headers.emplace_back("Allow", std::move(allow));
      return respond(std::move(response));
    }
    return respond(error_response(Error{Errc::not_found, "No such endpoint: " + request.path}));
  }
  Ctx ctx{services_, lookups_, request, std::move(params), std::nullopt, respond, services_.clock.now()};
  if (found->authenticated) {
    if (request.authorization.empty()) {
      return ctx.fail(Error{Errc::unauthenticated, "Send a token as 'Authorization: Bearer <token>'"});
    }
    ctx.principal = authenticate(services_, request.authorization);
    if (!ctx.principal) return ctx.fail(Error{Errc::unauthenticated, "The token is not valid"});
  }
  if (!request.body.empty() && !is_json_media_type(request.content_type)) {
    return ctx.fail(Error{Errc::unsupported_media_type, "Send bodies as UTF-8 JSON: Content-Type: application/json"});
  }
  try {
    found->handler(ctx);
  } catch (const std::exception& e) {
    // A bug, not bad input: log it and answer 500 rather than take the process down.
    std::fprintf(stderr, "canopy: handler for %s threw: %s\n", request.path.c_str(), e.what());
    ctx.fail(Error{Errc::internal, "Internal error"});
  }
}

}  // namespace canopy::net
