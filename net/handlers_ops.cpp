// Operations: /healthz, /readyz, /metrics, /v1/openapi.yaml and the manual clock.
#include "net/handler_support.hpp"
#include "net/metrics.hpp"
#include "config/limits.hpp"
#include "persistence/keys.hpp"

namespace canopy::net {

extern const std::string_view openapi_yaml;  // generated from docs/openapi.yaml at build time

Metrics& metrics() {
  static Metrics instance;
  return instance;
}

namespace {

using namespace canopy::domain;

void healthz(Ctx& ctx) { ctx.ok(200, R"({"status":"ok"})"); }

void readyz(Ctx& ctx) {
  if (!metrics().ready.load(std::memory_order_acquire)) {
    return ctx.fail(Error{Errc::unavailable, "Not accepting work (starting or shutting down)"});
  }
  ctx.ok(200, R"({"status":"ready"})");
}

void prometheus(Ctx& ctx) {
  auto& m = metrics();
  std::string out;
  auto line = [&out](std::string_view name, std::string_view labels, std::uint64_t value) {
    out.append(name);
    if (!labels.empty()) out.append("{").append(labels).append("}");
    out.append(" ").append(std::to_string(value)).append("\n");
  };
  out.append("# HELP canopy_http_requests_total HTTP requests answered, by status class.\n");
  out.append("# TYPE canopy_http_requests_total counter\n");
  line("canopy_http_requests_total", "class=\"2xx\"", m.requests_2xx.load(std::memory_order_relaxed));
  line("canopy_http_requests_total", "class=\"4xx\"", m.requests_4xx.load(std::memory_order_relaxed));
  line("canopy_http_requests_total", "class=\"5xx\"", m.requests_5xx.load(std::memory_order_relaxed));
  out.append("# HELP canopy_usage_events_total Usage events decided, by outcome.\n");
  out.append("# TYPE canopy_usage_events_total counter\n");
  line("canopy_usage_events_total", "status=\"accepted\"", m.events_accepted.load(std::memory_order_relaxed));
  line("canopy_usage_events_total", "status=\"refused\"", m.events_refused.load(std::memory_order_relaxed));
  out.append("# HELP canopy_connections_open Open HTTP connections.\n# TYPE canopy_connections_open gauge\n");
  line("canopy_connections_open", "", m.connections_open.load(std::memory_order_relaxed));
  out.append("# HELP canopy_connections_refused_total Connections closed at once because the limit was reached.\n");
  out.append("# TYPE canopy_connections_refused_total counter\n");
  line("canopy_connections_refused_total", "", m.connections_refused.load(std::memory_order_relaxed));
  const auto& ws = ctx.services.writer_stats;
  out.append("# HELP canopy_journal_commits_total LMDB write transactions committed (group commits).\n");
  out.append("# TYPE canopy_journal_commits_total counter\n");
  line("canopy_journal_commits_total", "", ws.commits.load(std::memory_order_relaxed));
  out.append("# HELP canopy_journal_records_total Journal records committed.\n# TYPE canopy_journal_records_total counter\n");
  line("canopy_journal_records_total", "", ws.records.load(std::memory_order_relaxed));
  out.append("# HELP canopy_checkpoints_total Checkpoints of org state.\n# TYPE canopy_checkpoints_total counter\n");
  line("canopy_checkpoints_total", "", ws.checkpoints.load(std::memory_order_relaxed));
  out.append("# HELP canopy_commit_microseconds_total Time spent inside LMDB commits.\n");
  out.append("# TYPE canopy_commit_microseconds_total counter\n");
  line("canopy_commit_microseconds_total", "", ws.commit_micros_total.load(std::memory_order_relaxed));
  out.append("# HELP canopy_commit_microseconds_max The longest LMDB commit so far.\n");
  out.append("# TYPE canopy_commit_microseconds_max gauge\n");
  line("canopy_commit_microseconds_max", "", ws.commit_micros_max.load(std::memory_order_relaxed));
  out.append("# HELP canopy_stream_connections Open WebSocket stream connections.\n# TYPE canopy_stream_connections gauge\n");
  line("canopy_stream_connections", "", m.stream_connections.load(std::memory_order_relaxed));
  out.append("# HELP canopy_stream_pushes_total Balance pushes sent on the stream.\n# TYPE canopy_stream_pushes_total counter\n");
  line("canopy_stream_pushes_total", "", m.stream_pushes.load(std::memory_order_relaxed));
  out.append("# HELP canopy_stream_slow_closes_total Stream connections closed (1008) because their queue filled.\n");
  out.append("# TYPE canopy_stream_slow_closes_total counter\n");
  line("canopy_stream_slow_closes_total", "", m.stream_slow_closes.load(std::memory_order_relaxed));
  const auto& mail = ctx.services.mail_stats;
  out.append("# HELP canopy_mail_delivered_total Invitation emails sent by SMTP or written to the outbox.\n");
  out.append("# TYPE canopy_mail_delivered_total counter\n");
  line("canopy_mail_delivered_total", "", mail.delivered.load(std::memory_order_relaxed));
  out.append("# HELP canopy_mail_retried_total Failed delivery attempts that were retried.\n");
  out.append("# TYPE canopy_mail_retried_total counter\n");
  line("canopy_mail_retried_total", "", mail.retried.load(std::memory_order_relaxed));
  out.append("# HELP canopy_mail_failed_total Emails given up after the last attempt.\n");
  out.append("# TYPE canopy_mail_failed_total counter\n");
  line("canopy_mail_failed_total", "", mail.failed.load(std::memory_order_relaxed));
  out.append("# HELP canopy_organizations Organizations known.\n# TYPE canopy_organizations gauge\n");
  line("canopy_organizations", "", ctx.services.directory.org_count());
  ctx.respond(HttpResponse{200, std::move(out), "text/plain; version=0.0.4", {}});
}

void openapi(Ctx& ctx) { ctx.respond(HttpResponse{200, std::string(openapi_yaml), "application/yaml", {}}); }

// Commits the manual clock's new time and answers. Its inputs are spawn arguments, not captures:
// CAF 0.17 dereferences a null argument tuple when a function actor is spawned without arguments.
void persist_clock(caf::event_based_actor* self, caf::actor writer, std::string value, Respond respond, Timestamp to) {
  self->request(writer, limits::writer_reply_timeout, actors::meta_atom::value,
                std::string(persistence::meta_manual_clock), std::move(value))
      .then(
          [self, respond, to](std::uint64_t) {
            respond(json_response(200, "{\"now\":\"" + format_rfc3339(to) + "\"}"));
            self->quit();
          },
          [self, respond](caf::error&) {
            respond(error_response(Error{Errc::unavailable, "The clock could not be stored"}));
            self->quit();
          });
}

// Moves the manual clock forward (tests cross billing cycles with it). Durable: the new time is
// committed before the answer, so a restart in manual mode resumes from it.
void set_clock(Ctx& ctx) {
  // Without the manual clock the endpoint does not exist, for anyone.
  if (!ctx.services.clock.manual()) return ctx.fail(Error{Errc::not_found, "No such endpoint: " + ctx.request.path});
  ctx.principal = authenticate(ctx.services, ctx.request.authorization);
  if (!ctx.principal) return ctx.fail(Error{Errc::unauthenticated, "Send the operator token as 'Authorization: Bearer <token>'"});
  if (!require_operator(ctx)) return;
  constexpr FieldSpec specs[] = {{"now", JsonType::string, true}};
  FieldValue v[1];
  if (!read_body(ctx, specs, v)) return;
  const auto to = parse_rfc3339(v[0].text);
  if (!to) return ctx.fail(invalid_field("now", "now must be an RFC 3339 time"));
  if (!ctx.services.clock.advance_to(*to)) return ctx.fail(invalid_field("now", "The clock cannot move backwards"));
  std::string value;
  persistence::put_u64_be(value, static_cast<std::uint64_t>(*to));
  ctx.services.system.spawn(persist_clock, ctx.services.writer, std::move(value), ctx.respond, *to);
}

}  // namespace

// GET /v1/stream without a WebSocket upgrade (an upgrade never reaches the router: http_session.cpp).
void stream_without_upgrade(Ctx& ctx) {
  ctx.fail(Error{Errc::invalid_request, "GET /v1/stream speaks WebSocket: send an Upgrade: websocket request"});
}

void add_ops_routes(std::vector<Route>& routes) {
  routes.push_back({Method::get, "/healthz", healthz, false});
  routes.push_back({Method::get, "/readyz", readyz, false});
  routes.push_back({Method::get, "/metrics", prometheus, false});
  routes.push_back({Method::get, "/v1/openapi.yaml", openapi, false});
  routes.push_back({Method::post, "/v1/admin/clock", set_clock, false});  // authenticates itself, after the 404
  routes.push_back({Method::get, "/v1/stream", stream_without_upgrade});
}

}  // namespace canopy::net
