#include "net/router.hpp"

#include <algorithm>
#include <cctype>
#include <exception>

namespace canopy::net {

using domain::Errc;
using domain::Error;

namespace {

// Matches `path` against `pattern`, collecting the {} segments.
bool match(std::string_view pattern, std::string_view path, std::vector<std::string>& params) {
  params.clear();
  while (!pattern.empty() && !path.empty()) {
    if (pattern.front() != '/' || path.front() != '/') return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    const auto pe = pattern.find('/');
    const auto se = path.find('/');
    const auto pseg = pattern.substr(0, pe);
    const auto seg = path.substr(0, se);
    if (pseg == "{}") {
      if (seg.empty()) return false;
      params.emplace_back(seg);
    } else if (pseg != seg) {
      return false;
    }
    pattern.remove_prefix(pseg.size());
    path.remove_prefix(seg.size());
  }
  return pattern.empty() && path.empty();
}

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

// "application/json", in any case, with or without parameters such as "; charset=utf-8".
bool is_json_media_type(std::string_view content_type) {
  return iequals(trim(content_type.substr(0, content_type.find(';'))), "application/json");
}

std::string_view method_name(Method m) {
  switch (m) {
    case Method::get: return "GET";
    case Method::post: return "POST";
    case Method::put: return "PUT";
    case Method::patch: return "PATCH";
    case Method::del: return "DELETE";
    case Method::other: break;
  }
  return "";
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

Router::Router(actors::Services& services) : services_(services) {
  add_org_routes(routes_);
  add_billing_routes(routes_);
  add_usage_routes(routes_);
  add_ops_routes(routes_);
  add_member_routes(routes_);
  add_key_routes(routes_);
  add_settings_routes(routes_);
  add_usage_report_routes(routes_);
  add_alert_routes(routes_);
}

void Router::handle(HttpRequest& request, Respond respond) const {
  std::vector<std::string> params, found_params;
  const Route* found = nullptr;
  std::string allow;  // methods the path supports, for a 405's Allow header
  for (const auto& route : routes_) {
    if (!match(route.pattern, request.path, params)) continue;
    allow.append(allow.empty() ? "" : ", ").append(method_name(route.method));
    if (route.method == request.method && !found) {
      found = &route;
      found_params = params;
    }
  }
  if (!found) {
    if (!allow.empty()) {
      auto response = error_response(Error{Errc::method_not_allowed, "Method not allowed on " + request.path});
      response.headers.emplace_back("Allow", allow);
      return respond(std::move(response));
    }
    return respond(error_response(Error{Errc::not_found, "No such endpoint: " + request.path}));
  }
  params = std::move(found_params);
  Ctx ctx{services_, request, std::move(params), std::nullopt, respond, services_.clock.now()};
  if (found->authenticated) {
    if (request.authorization.empty()) {
      return ctx.fail(Error{Errc::unauthenticated, "Send a token as 'Authorization: Bearer <token>'"});
    }
    ctx.principal = authenticate(services_, request.authorization);
    if (!ctx.principal) return ctx.fail(Error{Errc::unauthenticated, "The token is not valid"});
  }
  if (!request.body.empty() && !is_json_media_type(request.content_type)) {
    return ctx.fail(Error{Errc::unsupported_media_type, "Send bodies as Content-Type: application/json"});
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
