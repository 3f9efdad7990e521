// Usage analytics: GET /v1/orgs/{id}/usage and GET /v1/orgs/{id}/usage/sub-orgs.
//
// Reports are read from the usage buckets (persistence/usage_query.hpp), which the writer counts in
// memory and writes with its checkpoints; a report first has it write the buckets of the orgs it
// covers, so it sees every acknowledged charge. Under show-credits, a direct member gets counts and
// quantities but no money.
#include <algorithm>
#include <functional>
#include <memory>

#include "actors/messages.hpp"
#include "config/limits.hpp"
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

struct ReportJob;
// Shapes a report's answer from the reports, one per org of the job.
using ReportBody = std::function<std::string(const ReportJob&, const std::vector<UsageReport>&)>;

// What a report needs once the writer has answered (the Ctx is gone by then).
struct ReportJob {
  actors::Services* services = nullptr;
  Respond respond;
  Timestamp now = 0;
  std::vector<actors::OrgPtr> orgs;
  DayRange range;
  ReportBody body;
};

// Reads the reports of the job's orgs from one snapshot of the store, so the numbers agree with each
// other however many charges commit meanwhile. False when the store cannot be read.
bool read_reports(const ReportJob& job, std::vector<UsageReport>& reports) {
  reports.assign(job.orgs.size(), persistence::empty_report(job.range));
  const auto s = job.services->store.read([&](const persistence::Snapshot& snapshot) {
    for (std::size_t i = 0; i < job.orgs.size(); ++i) {
      if (auto st = persistence::add_usage(snapshot, job.orgs[i]->id, job.range, reports[i]); !st.ok()) return st;
    }
    return persistence::Status{};
  });
  if (!s.ok()) {
    std::fprintf(stderr, "canopy: reading usage: %s\n", s.message.c_str());
    return false;
  }
  // Free credits of a rollover due but not yet written count as if it were. The org is read after
  // the buckets: its actor publishes a rollover before journaling it, so an org still in its old
  // cycle now had no rollover in the buckets just read, and nothing is counted twice.
  for (std::size_t i = 0; i < job.orgs.size(); ++i) {
    const auto now_org = job.services->directory.org(job.orgs[i]->id);
    const auto pending =
        now_org ? pending_free_credits(*now_org, job.now, job.services->options.free_credits_micros) : std::nullopt;
    if (pending && pending->day >= job.range.from && pending->day <= job.range.to) {
      reports[i].total_credits_micros += pending->micros;
    }
  }
  return true;
}

void answer_unavailable(const ReportJob& job) {
  job.respond(error_response(Error{Errc::unavailable, "Usage could not be read; retry"}));
}

// Has the writer write the job's orgs' buckets counted since their checkpoint, then reads and
// answers (on a CAF worker). Its input is a spawn argument, not a capture: CAF 0.17 dereferences a
// null argument tuple when a function actor is spawned without arguments.
void run_report(caf::event_based_actor* self, std::shared_ptr<const ReportJob> job) {
  std::vector<OrgId> ids;
  ids.reserve(job->orgs.size());
  for (const auto& org : job->orgs) ids.push_back(org->id);
  self->request(job->services->writer, limits::writer_reply_timeout, actors::usage_atom::value, std::move(ids))
      .then(
          [self, job](std::uint64_t) {
            std::vector<UsageReport> reports;
            if (read_reports(*job, reports)) {
              job->respond(json_response(200, job->body(*job, reports)));
            } else {
              answer_unavailable(*job);
            }
            self->quit();
          },
          [self, job](caf::error&) {
            answer_unavailable(*job);
            self->quit();
          });
}

void start_report(Ctx& ctx, std::vector<actors::OrgPtr> orgs, DayRange range, ReportBody body) {
  auto job = std::make_shared<ReportJob>();
  job->services = &ctx.services;
  job->respond = ctx.respond;
  job->now = ctx.now;
  job->orgs = std::move(orgs);
  job->range = range;
  job->body = std::move(body);
  ctx.services.system.spawn(run_report, std::shared_ptr<const ReportJob>(std::move(job)));
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
  const OrgId id = view->org().id;
  const bool hide = hides_money(view->org(), view->access);
  start_report(ctx, {view->lineage.front()}, *range, [id, hide](const ReportJob&, const std::vector<UsageReport>& reports) {
    JsonWriter w;
    w.begin_object().key("org_id").string(to_string(id));
    write_totals(w, reports.front(), hide);
    w.end_object();
    return w.take();
  });
}

// The sub-org report: every descendant's totals summed, and each as a row.
std::string sub_org_body(OrgId id, bool hide, const ReportJob& job, const std::vector<UsageReport>& reports) {
  const auto& descendants = job.orgs;
  struct OrgRow {
    const OrgState* org;
    Micros spend, credits;
  };
  UsageReport total = persistence::empty_report(job.range);
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
  w.begin_object().key("org_id").string(to_string(id));
  write_totals(w, total, hide);
  w.key("organizations").raw(rows.take());
  w.end_object();
  return w.take();
}

// Every descendant (not the org itself), each also as a row; detached orgs are no longer descendants.
void get_sub_org_usage(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::read_sub_org_usage);
  if (!view) return;
  const auto range = read_range(ctx);
  if (!range) return;
  const bool hide = hides_money(view->org(), view->access);
  const OrgId id = view->org().id;
  start_report(ctx, ctx.services.directory.descendants(id), *range,
               [id, hide](const ReportJob& job, const std::vector<UsageReport>& reports) {
                 return sub_org_body(id, hide, job, reports);
               });
}

}  // namespace

void add_usage_report_routes(std::vector<Route>& routes) {
  routes.push_back({Method::get, "/v1/orgs/{}/usage", get_usage});
  routes.push_back({Method::get, "/v1/orgs/{}/usage/sub-orgs", get_sub_org_usage});
}

}  // namespace canopy::net
