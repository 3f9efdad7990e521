// The hot path: POST /v1/orgs/{id}/usage and POST /v1/usage:batch.
//
// The gateway only parses, authorizes and groups; every decision is the org actors' (org_actor.hpp).
// A batch is split by origin org, one ChargeRequest per org, and answered in the client's order once
// every group is back.
#include <atomic>
#include <unordered_map>

#include "domain/keyed_hash.hpp"
#include "domain/rules.hpp"
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
  const auto modules = domain::effective_modules(actors::raw_lineage(view->lineage));
  caf::anon_send(actor, actors::charge_atom::value,
                 actors::ChargeRequest{events, ctx.now, modules, [respond = ctx.respond, events](std::vector<ChargeOutcome> out) {
                   const ChargeOutcome& o = out.front();
                   count_outcome(o);
                   if (o.status != ChargeStatus::accepted) return respond(error_response(refusal_error(o)));
                   JsonWriter w;
                   w.begin_object().key("id").string(events->front().id);
                   write_outcome(w, o);
                   w.end_object();
                   respond(json_response(200, w.take()));
                 }});
}

// Where each event of a batch went: the org group it travels in and its place there, or the refusal
// it got before reaching an actor (an org that does not exist or is not visible to the caller).
struct Slot {
  std::uint32_t group = 0;  // refused_at_gateway: `index` is into BatchAnswer::refused
  std::uint32_t index = 0;
};
inline constexpr std::uint32_t refused_at_gateway = UINT32_MAX;

// An event refused at the gateway, as the client spelled it, for the answer.
struct RefusedAtGateway {
  EventText id;
  std::string org_id;
};

// The answers of one batch, filled in by each org group on its actor's thread; whoever fills the
// last group writes the response (the acquire-release countdown orders every slot before it). The
// events themselves travel in their groups (moved there, never copied); the answer reads their ids
// back from the same vectors. Of what the gateway allocates here only the 8-byte slots are per event:
// what a batch allocates afresh is faulted in afresh (a page fault per 4 KiB), and the parsed items,
// ~140 bytes an event, stay in the I/O thread's reused buffer (post_usage_batch).
struct BatchAnswer {
  std::vector<Slot> slots;  // one per event, in the client's order
  std::vector<RefusedAtGateway> refused;
  std::vector<std::shared_ptr<const std::vector<ChargeEvent>>> groups;
  std::vector<std::vector<ChargeOutcome>> outcomes;  // per group, per event of the group
  std::atomic<std::size_t> groups_left{0};
  Respond respond;

  void write() {
    JsonWriter w;
    w.reserve(96 * slots.size() + 32);  // a result is about 80 bytes: one allocation for the body
    w.begin_object().key("results").begin_array();
    // The events a group's record accepted share its payer: encode the rest of their result once per
    // group, not once per event. {"id":"…","status":"accepted","payer_org_id":"…"}. (A retried id
    // answers with the payer of its first acceptance, which may differ: the tail is then re-encoded.)
    std::vector<std::string> accepted_tails(groups.size());  // ,"status":…}: the object after its id
    std::vector<OrgId> tail_payers(groups.size(), OrgId::none);
    JsonWriter tail;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      const Slot& slot = slots[i];
      if (slot.group == refused_at_gateway) {
        const RefusedAtGateway& r = refused[slot.index];
        w.begin_object().key("id").string(r.id);
        w.key("status").string("refused").key("code").string(errc_name(Errc::not_found));
        w.key("org_id").string(r.org_id).end_object();
        continue;
      }
      const ChargeOutcome& o = outcomes[slot.group][slot.index];
      const std::string_view id = (*groups[slot.group])[slot.index].id;
      if (o.status == ChargeStatus::accepted) {
        std::string& accepted_tail = accepted_tails[slot.group];
        if (tail_payers[slot.group] != o.org) {  // an accepted event always has a payer: never none
          tail_payers[slot.group] = o.org;
          tail.clear();
          tail.begin_object();
          write_outcome(tail, o);
          tail.end_object();
          accepted_tail.assign(1, ',').append(tail.str(), 1);
        }
        w.raw_around(R"({"id":)", id, accepted_tail);
      } else {
        w.begin_object().key("id").string(id);
        write_outcome(w, o);
        w.end_object();
      }
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
  // The parsed items are needed only until their events are grouped: the I/O thread keeps one buffer
  // for them (up to a full batch's, ~1.4 MB) instead of faulting in a new one per batch.
  thread_local std::vector<UsageEventIn> items;
  items.clear();
  if (auto err = parse_usage_batch(ctx.request.body, ctx.now, items)) return ctx.fail(*err);
  const std::size_t n = items.size();
  auto answer = std::make_shared<BatchAnswer>();
  answer->slots.resize(n);
  answer->respond = ctx.respond;

  // Group by origin org, keeping each event's position. An org is looked up and checked once per
  // batch, however many of its events the batch holds.
  struct Group {
    OrgId org;
    domain::ModuleSet modules = 0;  // in effect at the org, from the lineage read to authorize it
    std::uint32_t size = 0;         // its events, counted before they are moved
    std::vector<ChargeEvent> events;
  };
  std::vector<Group> groups;
  // Client's org id -> group (or refused). Keyed: 10,000 org ids crafted to share a bucket must not
  // make the batch a quadratic walk on the I/O thread.
  std::unordered_map<std::string_view, std::uint32_t, domain::KeyedHash> group_of;
  for (std::uint32_t i = 0; i < n; ++i) {
    auto& item = items[i];
    auto [it, fresh] = group_of.try_emplace(item.org_id, refused_at_gateway);
    if (fresh) {
      const auto org = parse_org_id(item.org_id);
      const auto lineage = org ? ctx.services.directory.lineage(*org) : std::vector<actors::OrgPtr>{};
      if (!lineage.empty() && ctx.services.directory.access(principal, lineage).visible()) {
        it->second = static_cast<std::uint32_t>(groups.size());
        groups.push_back(Group{*org, domain::effective_modules(actors::raw_lineage(lineage)), 0, {}});
      }
    }
    Slot& slot = answer->slots[i];
    slot.group = it->second;
    if (slot.group == refused_at_gateway) {
      // The org id is a view into the parser, which the next request reuses: the refused keep a copy.
      slot.index = static_cast<std::uint32_t>(answer->refused.size());
      answer->refused.push_back(RefusedAtGateway{std::move(item.event.id), std::string(item.org_id)});
    } else {
      slot.index = groups[slot.group].size++;
    }
  }
  // Each event moved once, into a group sized for it.
  for (auto& group : groups) group.events.reserve(group.size);
  for (std::uint32_t i = 0; i < n; ++i) {
    const Slot& slot = answer->slots[i];
    if (slot.group != refused_at_gateway) groups[slot.group].events.push_back(std::move(items[i].event));
  }
  items.clear();  // what the moves left; the capacity is kept for the next batch
  if (groups.empty()) return answer->write();
  answer->outcomes.resize(groups.size());
  for (auto& group : groups) {
    answer->groups.push_back(std::make_shared<const std::vector<ChargeEvent>>(std::move(group.events)));
  }
  answer->groups_left.store(groups.size(), std::memory_order_relaxed);
  for (std::uint32_t g = 0; g < groups.size(); ++g) {
    caf::anon_send(ctx.services.directory.actor_of(groups[g].org), actors::charge_atom::value,
                   actors::ChargeRequest{answer->groups[g], ctx.now, groups[g].modules, [answer, g](std::vector<ChargeOutcome> out) {
                                           for (const auto& o : out) count_outcome(o);
                                           answer->outcomes[g] = std::move(out);
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
