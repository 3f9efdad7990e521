// Usage analytics: GET /v1/orgs/{id}/usage and GET /v1/orgs/{id}/usage/sub-orgs.
//
// Reports are read from the usage buckets (persistence/usage_query.hpp), which each charge updates in
// its own commit. Under show-credits, a direct member gets counts and quantities but no money.
#include <algorithm>

#include "domain/usage.hpp"
#include "net/handler_support.hpp"
#include "net/views.hpp"
#include "persistence/usage_query.hpp"

namespace canopy::net {
namespace {

using namespace canopy::domain;
using persistence::UsageReport;

std::optional<DayRange> read_range(Ctx& ctx) {
  const auto& q = ctx.request.query;
  auto r = resolve_range(query_param(q, "range"), query_param(q, "from"), query_param(q, "to"), ctx.now);
  if (auto* err = std::get_if<Error>(&r)) {
    ctx.fail(*err);
    return std::nullopt;
  }
  return std::get<DayRange>(r);
}

// Reads the reports of `orgs` over `range` from one snapshot of the store, so the numbers agree with
// each other however many charges commit meanwhile; fills `reports` (one per org). False after
// answering 503 when the store cannot be read.
bool read_reports(Ctx& ctx, const std::vector<actors::OrgPtr>& orgs, DayRange range, std::vector<UsageReport>& reports) {
  reports.assign(orgs.size(), persistence::empty_report(range));
  const auto s = ctx.services.store.read([&](const persistence::Snapshot& snapshot) {
    for (std::size_t i = 0; i < orgs.size(); ++i) {
      if (auto st = persistence::add_usage(snapshot, orgs[i]->id, range, reports[i]); !st.ok()) return st;
    }
    return persistence::Status{};
  });
  if (!s.ok()) {
    std::fprintf(stderr, "canopy: reading usage: %s\n", s.message.c_str());
    ctx.fail(Error{Errc::unavailable, "Usage could not be read; retry"});
    return false;
  }
  // Free credits of a rollover due but not yet written count as if it were. The org is read after
  // the buckets: its actor publishes a rollover before journaling it, so an org still in its old
  // cycle now had no rollover in the buckets just read, and nothing is counted twice.
  for (std::size_t i = 0; i < orgs.size(); ++i) {
    const auto now_org = ctx.services.directory.org(orgs[i]->id);
    const auto pending =
        now_org ? pending_free_credits(*now_org, ctx.now, ctx.services.options.free_credits_micros) : std::nullopt;
    if (pending && pending->day >= range.from && pending->day <= range.to) reports[i].total_credits_micros += pending->micros;
  }
  return true;
}

// The fields both reports share. `hide`: the show-credits rule (no money).
void write_totals(JsonWriter& w, const UsageReport& r, bool hide) {
  w.key("from").string(format_day(r.range.from));
  w.key("to").string(format_day(r.range.to));
  if (!hide) {
    w.key("total_spend_micros").integer(r.total_spend_micros);
    w.key("total_credits_micros").integer(r.total_credits_micros);
  }
  w.key("daily").begin_array();
  for (std::size_t i = 0; i < r.daily.size(); ++i) {
    w.begin_object().key("date").string(format_day(r.range.from + static_cast<Day>(i)));
    if (!hide) w.key("spend_micros").integer(r.daily[i]);
    w.end_object();
  }
  w.end_array();
  // Highest spend first (then by type), the order a dashboard lists them in.
  std::vector<std::pair<std::string_view, const persistence::TypeUsage*>> types;
  for (const auto& [type, t] : r.by_type) types.emplace_back(type, &t);
  std::stable_sort(types.begin(), types.end(),
                   [](const auto& a, const auto& b) { return a.second->spend_micros > b.second->spend_micros; });
  w.key("by_event_type").begin_array();
  for (const auto& [type, tp] : types) {
    const auto& t = *tp;
    w.begin_object().key("type").string(type).key("count").unsigned_integer(t.count);
    w.key("quantity").unsigned_integer(t.quantity);
    if (!hide) w.key("spend_micros").integer(t.spend_micros);
    w.end_object();
  }
  w.end_array();
}

void get_usage(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::read_usage);
  if (!view) return;
  const auto range = read_range(ctx);
  if (!range) return;
  std::vector<UsageReport> reports;
  if (!read_reports(ctx, {view->lineage.front()}, *range, reports)) return;
  JsonWriter w;
  w.begin_object().key("org_id").string(to_string(view->org().id));
  write_totals(w, reports.front(), hides_money(view->org(), view->access));
  w.end_object();
  ctx.ok(200, w.take());
}

// Every descendant (not the org itself), each also as a row; detached orgs are no longer descendants.
void get_sub_org_usage(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::read_sub_org_usage);
  if (!view) return;
  const auto range = read_range(ctx);
  if (!range) return;
  const bool hide = hides_money(view->org(), view->access);
  UsageReport total = persistence::empty_report(*range);
  const auto descendants = ctx.services.directory.descendants(view->org().id);
  struct OrgRow {
    const OrgState* org;
    Micros spend, credits;
  };
  std::vector<UsageReport> reports;
  if (!read_reports(ctx, descendants, *range, reports)) return;
  std::vector<OrgRow> org_rows;
  org_rows.reserve(descendants.size());
  for (std::size_t k = 0; k < descendants.size(); ++k) {
    const UsageReport& one = reports[k];
    org_rows.push_back(OrgRow{descendants[k].get(), one.total_spend_micros, one.total_credits_micros});
    total.total_spend_micros += one.total_spend_micros;
    total.total_credits_micros += one.total_credits_micros;
    for (std::size_t i = 0; i < one.daily.size(); ++i) total.daily[i] += one.daily[i];
    for (const auto& [type, t] : one.by_type) {
      auto& sum = total.by_type[type];
      sum.count += t.count;
      sum.quantity += t.quantity;
      sum.spend_micros += t.spend_micros;
    }
  }
  // Highest spend first, then by name: who costs the most.
  std::stable_sort(org_rows.begin(), org_rows.end(), [](const OrgRow& a, const OrgRow& b) {
    return a.spend != b.spend ? a.spend > b.spend : a.org->name < b.org->name;
  });
  JsonWriter rows;
  rows.begin_array();
  for (const auto& row : org_rows) {
    rows.begin_object().key("org_id").string(to_string(row.org->id)).key("name").string(row.org->name);
    rows.key("parent_id").string(to_string(row.org->parent));
    if (!hide) {
      rows.key("spend_micros").integer(row.spend);
      rows.key("credits_micros").integer(row.credits);
    }
    rows.end_object();
  }
  rows.end_array();
  JsonWriter w;
  w.begin_object().key("org_id").string(to_string(view->org().id));
  write_totals(w, total, hide);
  w.key("organizations").raw(rows.take());
  w.end_object();
  ctx.ok(200, w.take());
}

}  // namespace

void add_usage_report_routes(std::vector<Route>& routes) {
  routes.push_back({Method::get, "/v1/orgs/{}/usage", get_usage});
  routes.push_back({Method::get, "/v1/orgs/{}/usage/sub-orgs", get_sub_org_usage});
}

}  // namespace canopy::net
