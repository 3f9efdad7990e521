// The hot path: POST /v1/orgs/{id}/usage and POST /v1/usage:batch.
//
// The gateway only parses, authorizes and groups; every decision is the org actors' (org_actor.hpp).
// A batch is split by origin org, one ChargeRequest per org, and answered in the client's order once
// every group is back.
#include <atomic>
#include <unordered_map>

#include "net/handler_support.hpp"
#include "net/json_out.hpp"
#include "net/metrics.hpp"
#include "net/usage_outcome.hpp"

namespace canopy::net {
namespace {

using namespace canopy::domain;
using actors::ChargeOutcome;
using actors::ChargeStatus;

void post_usage(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::write_usage);
  if (!view) return;
  UsageEventIn in;
  if (auto err = parse_usage_event(ctx.request.body, ctx.now, in)) return ctx.fail(*err);
  caf::actor actor = ctx.services.directory.actor_of(view->org().id);
  auto events = std::make_shared<const std::vector<ChargeEvent>>(1, std::move(in.event));
  caf::anon_send(actor, actors::charge_atom::value,
                 actors::ChargeRequest{events, ctx.now, [respond = ctx.respond, events](std::vector<ChargeOutcome> out) {
                   const ChargeOutcome& o = out.front();
                   count_outcome(o);
                   if (o.status != ChargeStatus::accepted) return respond(error_response(refusal_error(o)));
                   JsonWriter w;
                   w.begin_object().key("id").string(events->front().id).key("status").string("accepted");
                   w.key("payer_org_id").string(to_string(o.org)).end_object();
                   respond(json_response(200, w.take()));
                 }});
}

// The answers of one batch, filled in by each org group on its actor's thread; whoever fills the
// last group writes the response (the acquire-release countdown orders every slot before it).
struct BatchAnswer {
  std::vector<UsageEventIn> items;
  std::vector<ChargeOutcome> outcomes;
  std::vector<std::optional<Error>> errors;  // refused before reaching an actor (unknown org)
  std::atomic<std::size_t> groups_left{0};
  Respond respond;

  void write() {
    JsonWriter w;
    w.begin_object().key("results").begin_array();
    for (std::size_t i = 0; i < items.size(); ++i) {
      w.begin_object().key("id").string(items[i].event.id);
      if (errors[i]) {
        w.key("status").string("refused").key("code").string(errc_name(errors[i]->code));
        w.key("org_id").string(items[i].org_id);
      } else if (outcomes[i].status == ChargeStatus::accepted) {
        w.key("status").string("accepted").key("payer_org_id").string(to_string(outcomes[i].org));
      } else {
        const Error e = refusal_error(outcomes[i]);
        w.key("status").string("refused").key("code").string(errc_name(e.code));
        w.key("org_id").string(to_string(outcomes[i].org));
      }
      w.end_object();
    }
    w.end_array().end_object();
    respond(json_response(200, w.take()));
  }
};

void post_usage_batch(Ctx& ctx) {
  const auto& principal = *ctx.principal;
  if (principal.kind == actors::Principal::Kind::user) {
    return ctx.fail(Error{Errc::forbidden, "Batches are sent with an org API key or the operator token"});
  }
  auto answer = std::make_shared<BatchAnswer>();
  if (auto err = parse_usage_batch(ctx.request.body, ctx.now, answer->items)) return ctx.fail(*err);
  const std::size_t n = answer->items.size();
  answer->outcomes.resize(n);
  answer->errors.resize(n);
  answer->respond = ctx.respond;

  // Group by origin org, keeping each event's position.
  std::unordered_map<OrgId, std::vector<std::uint32_t>> groups;
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto org = parse_org_id(answer->items[i].org_id);
    const auto lineage = org ? ctx.services.directory.lineage(*org) : std::vector<actors::OrgPtr>{};
    if (lineage.empty() || !ctx.services.directory.access(principal, lineage).visible()) {
      answer->errors[i] = Error{Errc::not_found, "Organization not found"};
      continue;
    }
    groups[*org].push_back(i);
  }
  if (groups.empty()) return answer->write();
  answer->groups_left.store(groups.size(), std::memory_order_relaxed);
  for (auto& [org, indexes] : groups) {
    auto events = std::make_shared<std::vector<ChargeEvent>>();
    events->reserve(indexes.size());
    for (const auto i : indexes) events->push_back(answer->items[i].event);
    caf::anon_send(ctx.services.directory.actor_of(org), actors::charge_atom::value,
                   actors::ChargeRequest{std::move(events), ctx.now,
                                         [answer, indexes = std::move(indexes)](std::vector<ChargeOutcome> out) {
                                           for (std::size_t k = 0; k < indexes.size(); ++k) {
                                             count_outcome(out[k]);
                                             answer->outcomes[indexes[k]] = out[k];
                                           }
                                           if (answer->groups_left.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                                             answer->write();
                                           }
                                         }});
  }
}

}  // namespace

void add_usage_routes(std::vector<Route>& routes) {
  routes.push_back({Method::post, "/v1/orgs/{}/usage", post_usage});
  routes.push_back({Method::post, "/v1/usage:batch", post_usage_batch});
}

}  // namespace canopy::net
