#include "net/router.hpp"

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

std::optional<actors::Principal> authenticate(const actors::Services& services, std::string_view header) {
  constexpr std::string_view bearer = "Bearer ";
  if (header.size() <= bearer.size() || header.substr(0, bearer.size()) != bearer) return std::nullopt;
  return services.directory.principal_for(domain::hash_token(header.substr(bearer.size())));
}

}  // namespace

Router::Router(actors::Services& services) : services_(services) {
  add_org_routes(routes_);
  add_billing_routes(routes_);
  add_usage_routes(routes_);
  add_ops_routes(routes_);
}

void Router::handle(HttpRequest& request, Respond respond) const {
  std::vector<std::string> params;
  const Route* found = nullptr;
  bool path_known = false;
  for (const auto& route : routes_) {
    if (!match(route.pattern, request.path, params)) continue;
    path_known = true;
    if (route.method == request.method) {
      found = &route;
      break;
    }
  }
  if (!found) {
    if (path_known) return respond(error_response(Error{Errc::method_not_allowed, "Method not allowed on " + request.path}));
    return respond(error_response(Error{Errc::not_found, "No such endpoint: " + request.path}));
  }
  Ctx ctx{services_, request, std::move(params), std::nullopt, respond, services_.clock.now()};
  if (found->authenticated) {
    if (request.authorization.empty()) {
      return ctx.fail(Error{Errc::unauthenticated, "Send a token as 'Authorization: Bearer <token>'"});
    }
    ctx.principal = authenticate(services_, request.authorization);
    if (!ctx.principal) return ctx.fail(Error{Errc::unauthenticated, "The token is not valid"});
  }
  if (!request.body.empty() && request.content_type.rfind("application/json", 0) != 0) {
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
