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

// Prometheus text format, one family at a time.
class MetricsText {
 public:
  // Starts a family: its HELP and TYPE lines.
  MetricsText& family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    name_ = name;
    return *this;
  }
  MetricsText& sample(std::uint64_t value, std::string_view labels = {}) {
    out_.append(name_);
    if (!labels.empty()) out_.append("{").append(labels).append("}");
    out_.append(" ").append(std::to_string(value)).append("\n");
    return *this;
  }
  MetricsText& counter(std::string_view name, std::string_view help, const std::atomic<std::uint64_t>& value) {
    return family(name, "counter", help).sample(value.load(std::memory_order_relaxed));
  }
  MetricsText& gauge(std::string_view name, std::string_view help, std::uint64_t value) {
    return family(name, "gauge", help).sample(value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  std::string_view name_;
};

void prometheus(Ctx& ctx) {
  const auto& m = metrics();
  const auto& ws = ctx.services.writer_stats;
  const auto& mail = ctx.services.mail_stats;
  const auto load = [](const std::atomic<std::uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  MetricsText t;
  t.family("canopy_http_requests_total", "counter", "HTTP requests answered, by status class.")
      .sample(load(m.requests_2xx), "class=\"2xx\"")
      .sample(load(m.requests_4xx), "class=\"4xx\"")
      .sample(load(m.requests_5xx), "class=\"5xx\"");
  t.family("canopy_usage_events_total", "counter", "Usage events decided, by outcome.")
      .sample(load(m.events_accepted), "status=\"accepted\"")
      .sample(load(m.events_refused), "status=\"refused\"");
  t.gauge("canopy_connections_open", "Open HTTP and WebSocket connections.", load(m.connections_open));
  t.counter("canopy_connections_refused_total", "Connections closed at once because the limit was reached.",
            m.connections_refused);
  t.counter("canopy_accept_pauses_total",
            "Accepts failed for want of file descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), each "
            "followed by a short pause in accepting.",
            m.accept_pauses);
  t.counter("canopy_journal_commits_total", "Journal-part commits (group commits; each answers the records in it).", ws.commits);
  t.counter("canopy_journal_records_total", "Journal records committed.", ws.records);
  t.counter("canopy_checkpoints_total", "Writer commits whose state-part batch carried checkpoint slices (org snapshots, event-id rows, usage buckets).", ws.checkpoints);
  t.counter("canopy_event_ids_forgotten_total", "Accepted event ids erased past the idempotency retention.",
            ws.event_ids_forgotten);
  t.gauge("canopy_audit_base_seq", "The last journal record folded into the audit base (0: none).",
          load(ws.audit_base_seq));
  t.counter("canopy_journal_records_trimmed_total",
            "Journal records erased once the checkpoints covered them, folded into the audit base first.",
            ws.journal_records_trimmed);
  t.gauge("canopy_journal_trimmed_through", "The last journal record trimmed (0: none).", load(ws.journal_trimmed_through));
  t.gauge("canopy_journal_trim_stopped",
          "1 if the audit base stopped at a record the audit would report (the log and canopy check name it).",
          ws.journal_trim_stopped.load(std::memory_order_relaxed) ? 1 : 0);
  t.counter("canopy_event_id_sweeps_total", "Sweeps of the event-id index for expired ids finished.", ws.event_id_sweeps);
  t.gauge("canopy_event_ids_unindexed",
          "Accepted event ids journaled but not yet in the event-id index (written with the next checkpoints).",
          ws.event_ids_unindexed());
  t.gauge("canopy_unindexed_events_held",
          "Events org actors hold so they can answer retries of accepted ids not yet indexed.",
          load(ctx.services.unindexed_events_held));
  t.counter("canopy_commit_microseconds_total", "Time spent inside the journal part's LMDB commits.", ws.commit_micros_total);
  t.gauge("canopy_commit_microseconds_max", "The longest journal-part commit so far.", load(ws.commit_micros_max));
  t.counter("canopy_state_commits_total",
            "Commits of the state part (org snapshots, event-id index, usage buckets), behind the journal's.",
            ws.state_commits);
  t.counter("canopy_state_commit_microseconds_total", "Time spent inside the state part's LMDB commits.",
            ws.state_commit_micros_total);
  t.gauge("canopy_state_commit_microseconds_max", "The longest state-part commit so far.",
          load(ws.state_commit_micros_max));
  t.gauge("canopy_stream_connections", "Open WebSocket stream connections.", load(m.stream_connections));
  t.counter("canopy_stream_pushes_total", "Balance pushes sent on the stream.", m.stream_pushes);
  t.counter("canopy_stream_slow_closes_total", "Stream connections closed (1008) because their queue filled.",
            m.stream_slow_closes);
  t.counter("canopy_mail_delivered_total", "Invitation emails sent by SMTP or written to the outbox.", mail.delivered);
  t.counter("canopy_mail_retried_total", "Failed delivery attempts that were retried.", mail.retried);
  t.counter("canopy_mail_failed_total", "Emails given up after the last attempt.", mail.failed);
  t.gauge("canopy_organizations", "Organizations known.", ctx.services.directory.org_count());
  ctx.respond(HttpResponse{200, t.take(), "text/plain; version=0.0.4", {}});
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
