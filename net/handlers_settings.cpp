// Tenant settings: GET/PUT /v1/orgs/{id}/customization, PUT /v1/orgs/{id}/settings/show-credits-balance,
// and what the last one changes: GET /v1/orgs/{id}/indicator.
#include "domain/validation.hpp"
#include "net/handler_support.hpp"
#include "net/views.hpp"

namespace canopy::net {
namespace {

using namespace canopy::domain;
using actors::CommandResult;

void get_customization(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::read_org);
  if (!view) return;
  JsonWriter w;
  write_customization(w, view->org());
  ctx.ok(200, w.take());
}

// PUT replaces the whole customization: a field left out or null is cleared (name is required).
void put_customization(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_org);
  if (!view) return;
  constexpr FieldSpec specs[] = {{"name", JsonType::string, true},
                                 {"logo_url", JsonType::nullable_string, false},
                                 {"contact_email", JsonType::nullable_string, false},
                                 {"address", JsonType::nullable_string, false},
                                 {"terms_of_service_url", JsonType::nullable_string, false},
                                 {"privacy_policy_url", JsonType::nullable_string, false}};
  FieldValue v[6];
  if (!read_body(ctx, specs, v)) return;
  if (auto why = check_name(v[0].text)) return ctx.fail(invalid_field("name", "name " + *why));
  const auto text = [&](std::size_t i) { return v[i].present && !v[i].is_null ? v[i].text : std::string(); };
  Customization c;
  c.logo_url = text(1);
  c.contact_email = text(2);
  c.address = text(3);
  c.terms_of_service_url = text(4);
  c.privacy_policy_url = text(5);
  for (const std::size_t i : {1u, 4u, 5u}) {
    const std::string value = text(i);
    if (value.empty()) continue;
    if (auto why = check_http_url(value)) {
      return ctx.fail(invalid_field(std::string(specs[i].name), std::string(specs[i].name) + " " + *why));
    }
  }
  if (!c.contact_email.empty()) {
    if (auto why = check_email(c.contact_email)) return ctx.fail(invalid_field("contact_email", "contact_email " + *why));
    c.contact_email = normalize_email(c.contact_email);
  }
  if (auto why = check_address(c.address)) return ctx.fail(invalid_field("address", "address " + *why));
  send_command(ctx, view->org().id, actors::SetCustomization{v[0].text, std::move(c)},
               [respond = ctx.respond](const CommandResult& r) {
                 JsonWriter w;
                 write_customization(w, *r.org);
                 respond(json_response(200, w.take()));
               });
}

// Any member reads it: under show-credits it carries a percentage, never dollars.
void get_indicator(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::read_org);
  if (!view) return;
  JsonWriter w;
  write_indicator(w, ctx.services, view->org(), ctx.now);
  ctx.ok(200, w.take());
}

void put_show_credits(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_org);
  if (!view) return;
  constexpr FieldSpec specs[] = {{"enabled", JsonType::boolean, true}};
  FieldValue v[1];
  if (!read_body(ctx, specs, v)) return;
  send_command(ctx, view->org().id, actors::SetShowCredits{v[0].boolean}, [respond = ctx.respond](const CommandResult& r) {
    JsonWriter w;
    w.begin_object().key("enabled").boolean(r.org->show_credits_balance).end_object();
    respond(json_response(200, w.take()));
  });
}

}  // namespace

void add_settings_routes(std::vector<Route>& routes) {
  routes.push_back({Method::get, "/v1/orgs/{}/customization", get_customization});
  routes.push_back({Method::put, "/v1/orgs/{}/customization", put_customization});
  routes.push_back({Method::put, "/v1/orgs/{}/settings/show-credits-balance", put_show_credits});
  routes.push_back({Method::get, "/v1/orgs/{}/indicator", get_indicator});
}

}  // namespace canopy::net
