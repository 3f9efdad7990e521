// Routes a request to its handler: path match, method (405), authentication (401), content type
// (415). Handlers answer through ctx.respond, at once or later from an actor's thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/directory.hpp"
#include "actors/services.hpp"
#include "net/http.hpp"
#include "net/lookup_pool.hpp"
#include "net/route_table.hpp"

namespace canopy::net {

struct Ctx {
  actors::Services& services;
  LookupPool& lookups;  // for a handler's blocking lookups (DNS), answered from the pool's thread
  HttpRequest& request;
  std::vector<std::string> params;  // the {…} segments of the route, in order
  std::optional<actors::Principal> principal;
  Respond respond;
  domain::Timestamp now = 0;
  // The show-credits rule holds for this caller on the org the request is about (set by authorize()):
  // no `*_micros` anywhere in the answer, error details included.
  bool hide_money = false;

  void fail(const domain::Error& error) const { respond(error_response(hide_money ? without_money(error) : error)); }
  void ok(unsigned status, std::string body) const { respond(json_response(status, std::move(body))); }
};

// Each handlers_*.cpp contributes its routes.
void add_org_routes(std::vector<Route>& routes);
void add_billing_routes(std::vector<Route>& routes);
void add_usage_routes(std::vector<Route>& routes);
void add_ops_routes(std::vector<Route>& routes);
void add_member_routes(std::vector<Route>& routes);
void add_key_routes(std::vector<Route>& routes);
void add_settings_routes(std::vector<Route>& routes);
void add_usage_report_routes(std::vector<Route>& routes);
void add_alert_routes(std::vector<Route>& routes);

// The principal a bearer token stands for; nullopt when the header is malformed or the token unknown.
std::optional<actors::Principal> authenticate(const actors::Services& services, std::string_view authorization);

class Router {
 public:
  explicit Router(actors::Services& services);
  // Never throws; always answers through `respond` exactly once (maybe later, from another thread).
  void handle(HttpRequest& request, Respond respond) const;
  actors::Services& services() const { return services_; }

 private:
  actors::Services& services_;
  RouteTable routes_;
  mutable LookupPool lookups_;  // handlers post to it from handle(), which is const
};

}  // namespace canopy::net
