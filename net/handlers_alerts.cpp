// Alerts and webhooks: GET/PUT /v1/orgs/{id}/alerts, POST/GET /v1/orgs/{id}/webhooks,
// GET/DELETE /v1/orgs/{id}/webhooks/{wid}, GET /v1/orgs/{id}/webhooks/{wid}/deliveries.
#include <algorithm>

#include "config/limits.hpp"
#include "domain/alerts.hpp"
#include "net/handler_support.hpp"
#include "net/views.hpp"
#include "net/webhook_target.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"

namespace canopy::net {
namespace {

using namespace canopy::domain;
using actors::CommandResult;

void get_alerts(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::read_billing);
  if (!view) return;
  JsonWriter w;
  write_alert_config(w, view->org().alerts);
  ctx.ok(200, w.take());
}

// PUT replaces the settings: an omitted field is cleared (no thresholds, no low-balance line).
void put_alerts(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_org);
  if (!view) return;
  constexpr FieldSpec specs[] = {{"spend_percent_thresholds", JsonType::integer_array, false},
                                 {"low_balance_micros", JsonType::nullable_integer, false}};
  FieldValue v[2];
  if (!read_body(ctx, specs, v)) return;
  AlertConfig config;
  for (const auto p : v[0].integers) {
    if (p < 1 || p > limits::alert_threshold_percent_max) {
      return ctx.fail(invalid_field("spend_percent_thresholds", "spend_percent_thresholds values must be from 1 to " +
                                                                    std::to_string(limits::alert_threshold_percent_max)));
    }
    config.spend_percent_thresholds.push_back(static_cast<std::uint16_t>(p));
  }
  std::sort(config.spend_percent_thresholds.begin(), config.spend_percent_thresholds.end());
  auto& t = config.spend_percent_thresholds;
  t.erase(std::unique(t.begin(), t.end()), t.end());
  if (v[1].present && !v[1].is_null) config.low_balance_micros = v[1].integer;
  if (auto err = check_alert_config(config)) return ctx.fail(*err);
  send_command(ctx, view->org().id, actors::SetAlerts{std::move(config)}, [respond = ctx.respond](const CommandResult& r) {
    JsonWriter w;
    write_alert_config(w, r.org->alerts);
    respond(json_response(200, w.take()));
  });
}

void create_webhook(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_org);
  if (!view) return;
  constexpr FieldSpec specs[] = {{"url", JsonType::string, true}, {"events", JsonType::string_array, true}};
  FieldValue v[2];
  if (!read_body(ctx, specs, v)) return;
  if (v[0].text.size() > limits::webhook_url_bytes_max) {
    return ctx.fail(invalid_field("url", "url must be at most " + std::to_string(limits::webhook_url_bytes_max) + " bytes"));
  }
  AlertTypeSet events = 0;
  for (const auto& name : v[1].strings) {
    const auto type = parse_alert_type(name);
    if (!type) return ctx.fail(invalid_field("events", "events has an unknown event type '" + name + "'"));
    events = static_cast<AlertTypeSet>(events | bit(*type));
  }
  if (events == 0) return ctx.fail(invalid_field("events", "events must name at least one event type"));
  // The URL's host is resolved and vetted on a lookup thread: a slow resolver must not hold the I/O
  // thread, and every connection on it, for its timeout.
  ctx.lookups.run([&services = ctx.services, respond = ctx.respond, hide = ctx.hide_money, org = view->org().id,
                   url = std::move(v[0].text), events] {
    auto target = resolve_webhook_target(url, services.options.allow_private_webhooks);
    if (auto* error = std::get_if<std::string>(&target)) return respond(error_response(invalid_field("url", *error)));
    const std::string secret = make_token("whsec_");
    send_command(services, respond, hide, org, actors::CreateWebhook{url, events, secret},
                 [respond, secret](const CommandResult& r) {
                   const auto& hook = std::get<WebhookCreated>(*r.record).webhook;
                   JsonWriter w;
                   w.begin_object().key("id").string(to_string(hook.id)).key("secret").string(secret);
                   w.key("webhook");
                   write_webhook(w, hook);
                   w.end_object();
                   respond(json_response(201, w.take()));
                 });
  });
}

const Webhook* find_webhook(Ctx& ctx, const OrgState& org, const std::string& text) {
  const auto id = parse_webhook_id(text);
  for (const auto& h : org.webhooks) {
    if (id && h.id == *id) return &h;
  }
  ctx.fail(Error{Errc::not_found, "No webhook with this id in this organization", {{"webhook_id", text}}});
  return nullptr;
}

void list_webhooks(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_org);
  if (!view) return;
  JsonWriter w;
  w.begin_object().key("data").begin_array();
  for (const auto& h : view->org().webhooks) write_webhook(w, h);
  w.end_array().key("next_cursor").null().end_object();
  ctx.ok(200, w.take());
}

void get_webhook(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_org);
  if (!view) return;
  const Webhook* hook = find_webhook(ctx, view->org(), ctx.params[1]);
  if (!hook) return;
  JsonWriter w;
  write_webhook(w, *hook);
  ctx.ok(200, w.take());
}

void delete_webhook(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_org);
  if (!view) return;
  const Webhook* hook = find_webhook(ctx, view->org(), ctx.params[1]);
  if (!hook) return;
  send_command(ctx, view->org().id, actors::DeleteWebhook{hook->id},
               [respond = ctx.respond](const CommandResult&) { respond(no_content()); });
}

// Newest first; the cursor is the last row's id (dlv_…).
void list_deliveries(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_org);
  if (!view) return;
  const Webhook* hook = find_webhook(ctx, view->org(), ctx.params[1]);
  if (!hook) return;
  const auto limit = page_limit(ctx);
  if (!limit) return;
  const std::string prefix = persistence::u64_key(raw(hook->id));
  std::string from;
  if (auto cursor = query_param(ctx.request.query, "cursor")) {
    const auto seq = parse_id("dlv_", *cursor);
    if (!seq) return ctx.fail(invalid_field("cursor", "cursor is not one this list gave out"));
    from = prefix + persistence::u64_key(UINT64_MAX - *seq + 1);  // the row after it
  }
  JsonWriter w;
  w.begin_object().key("data").begin_array();
  std::size_t n = 0;
  std::uint64_t last = 0;
  bool more = false;
  persistence::Status bad;
  const auto s = ctx.services.store.scan(persistence::Table::webhook_deliveries, prefix, from,
                                         [&](std::string_view key, std::string_view value) {
                                           if (n == *limit) {
                                             more = true;
                                             return false;
                                           }
                                           auto row = persistence::decode_delivery_row(value);
                                           if (!row) {
                                             bad = {persistence::Status::Code::corruption, "a delivery row does not decode"};
                                             return false;
                                           }
                                           last = UINT64_MAX - persistence::get_u64_be(key.substr(8));
                                           write_delivery(w, last, *row);
                                           ++n;
                                           return true;
                                         });
  if (!s.ok() || !bad.ok()) return ctx.fail(Error{Errc::unavailable, "Deliveries could not be read; retry"});
  w.end_array().key("next_cursor");
  if (more) {
    w.string(format_id("dlv_", last));
  } else {
    w.null();
  }
  w.end_object();
  ctx.ok(200, w.take());
}

}  // namespace

void add_alert_routes(std::vector<Route>& routes) {
  routes.push_back({Method::get, "/v1/orgs/{}/alerts", get_alerts});
  routes.push_back({Method::put, "/v1/orgs/{}/alerts", put_alerts});
  routes.push_back({Method::post, "/v1/orgs/{}/webhooks", create_webhook});
  routes.push_back({Method::get, "/v1/orgs/{}/webhooks", list_webhooks});
  routes.push_back({Method::get, "/v1/orgs/{}/webhooks/{}", get_webhook});
  routes.push_back({Method::del, "/v1/orgs/{}/webhooks/{}", delete_webhook});
  routes.push_back({Method::get, "/v1/orgs/{}/webhooks/{}/deliveries", list_deliveries});
}

}  // namespace canopy::net
