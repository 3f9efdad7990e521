#include "actors/org_actor.hpp"

#include <algorithm>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "actors/recent_ids.hpp"
#include "actors/messages.hpp"
#include "actors/services.hpp"
#include "config/limits.hpp"
#include "domain/apply.hpp"
#include "domain/keyed_hash.hpp"
#include "domain/members.hpp"
#include "domain/rules.hpp"
#include "domain/validation.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"
#include "persistence/payment_rows.hpp"

namespace canopy::actors {
namespace {

using namespace canopy::domain;

using Outcomes = std::vector<std::pair<std::uint32_t, ChargeOutcome>>;

// A batch this org has admitted events of and is waiting to hear about.
struct Hop {
  Events events;
  std::vector<ChainHop> chain;             // origin .. this org
  Timestamp at = 0;
  std::vector<std::uint32_t> reserved;     // indexes admitted and reserved here
  Micros spend_reserved_micros = 0;
  Micros debit_reserved_micros = 0;
  Cycle reserved_in_cycle = 0;             // this org's cycle when it reserved
  Outcomes outcomes;                       // refusals decided here
  caf::actor child;                        // where to answer (null at the origin)
  std::uint64_t child_batch = 0;
  Reply<std::vector<ChargeOutcome>> reply; // origin: the gateway
  std::uint64_t committed_seq = 0;         // the journal seq of the record deciding it (0: none)
  std::vector<ChargeOutcome> origin_outcomes;  // origin: one per event
  struct InFlightId {
    std::uint32_t index;  // of the event
    std::uint64_t hash;   // of its id (RecentIds::hash)
  };
  std::vector<InFlightId> origin_ids;          // origin: the events whose ids are in ids_in_flight
};

struct OrgActorState {
  Services* services = nullptr;
  Directory::Entry* directory_entry = nullptr;  // where publish() puts this org's snapshots
  OrgState org;
  InFlight in_flight;
  std::unordered_map<std::uint64_t, Hop> hops;
  std::uint64_t next_batch = 1;
  // Origin event ids being decided: views into the events of this org's own hops, which hold them
  // until answer() takes the ids out. No copy of an id is ever made. (An id of up to 36 bytes lives
  // inside its event (EventText), so the view stays valid only because a hop's events are a shared,
  // immutable vector that nothing moves.)
  RecentIds ids_in_flight;
  // Origin event ids accepted that the store's index does not hold yet, with their payer, in
  // generations: one per value of WriterStats::ids_indexed_seq seen while answering (the writer
  // indexes a checkpoint's ids at once), so a few live at a time and each is forgotten whole, without
  // an erase per id, once the writer has indexed every id up to `seq`.
  struct Accepted {
    std::uint64_t indexed_when_begun = 0;  // ids_indexed_seq when the generation began
    std::uint64_t seq = 0;                 // the last journal seq of its records
    RecentIds ids;
    std::vector<Events> events;            // hold the ids' bytes
    std::size_t events_held = 0;           // in those batches, accepted or not
  };
  std::deque<Accepted> accepted;
  bool watching_index = false;  // in WriterStats::index_watchers, to be told when the index advances
  std::unordered_set<std::string, KeyedHash, std::equal_to<>> keys_in_flight;  // top-up / transfer idempotency keys being decided
  std::unordered_set<InvitationId> accepting;      // invitations whose acceptance is being committed
  // Commands run one at a time: each is decided against the state every earlier one left (two admins
  // demoting each other must not both pass the last-admin rule). Charges are not commands and never wait.
  bool command_busy = false;
  std::deque<CommandRequest> stashed;
  bool auto_recharge_suspended = false;            // after a decline, until the config changes
  caf::actor parent_actor;                         // the actor of parent_actor_of (forward_up)
  OrgId parent_actor_of = OrgId::none;
  // Continuations waiting for the writer's `committed_atom, token, seq`.
  std::unordered_map<std::uint64_t, std::function<void(std::uint64_t)>> awaiting_commit;
  std::uint64_t next_token = 1;
  // Records applied here ahead of their commit (a pause, a rollover, a recharge) not yet confirmed:
  // while any is, answers wait for a writer barrier (see answer()).
  std::uint64_t unconfirmed_ahead = 0;
  static constexpr const char* name = "canopy.org";
};

using OrgActor = caf::stateful_actor<OrgActorState>;

RecordPtr make_record(Record record) { return std::make_shared<const Record>(std::move(record)); }

void publish(OrgActor* self) {
  if (auto broken = check_invariants(self->state.org)) invariant_failed(broken->c_str(), __FILE__, __LINE__);
  auto& st = self->state;
  st.services->directory.publish(*st.directory_entry, std::make_shared<const OrgState>(st.org));
}

// The token under which the writer's `committed_atom` answer will call `then(seq)`.
template <class F>
std::uint64_t await_writer(OrgActorState& st, F then) {
  const std::uint64_t token = st.next_token++;
  st.awaiting_commit.emplace(token, std::move(then));
  return token;
}

// Appends `record` to the journal and calls `then(seq)` once it is durable. A plain message with a
// token rather than a CAF request: the writer always answers (or the process stops), so a timer per
// charge would only cost the clock thread work.
template <class F>
void journal(OrgActor* self, RecordPtr record, F then) {
  auto& st = self->state;
  const std::uint64_t token = await_writer(st, std::move(then));
  // Encoded here, on a scheduler thread: the writer's time is every commit's, so it only stores bytes.
  std::string bytes = persistence::encode(*record);
  self->send(st.services->writer, append_atom::value, std::move(record), std::move(bytes), token);
}

// Calls `then(seq)` once everything this org sent the writer before now is committed (a barrier
// behind it in the writer's FIFO mailbox).
template <class F>
void after_barrier(OrgActor* self, F then) {
  auto& st = self->state;
  const std::uint64_t token = await_writer(st, std::move(then));
  self->send(st.services->writer, barrier_atom::value, token);
}

// Journals a change already applied here, without waiting: later records depend on it through the
// writer's FIFO order, and answer() holds any reply until it is confirmed. `then(seq)` runs once it is.
template <class F>
void journal_ahead(OrgActor* self, RecordPtr record, F then) {
  auto& st = self->state;
  ++st.unconfirmed_ahead;
  journal(self, std::move(record), [self, then = std::move(then)](std::uint64_t seq) mutable {
    --self->state.unconfirmed_ahead;
    then(seq);
  });
}
void journal_ahead(OrgActor* self, RecordPtr record) {
  journal_ahead(self, std::move(record), [](std::uint64_t) {});
}

// Lazy cycle rollover on the first message after the cycle ended (see org_actor.hpp on why at once).
void roll_cycle_if_due(OrgActor* self) {
  auto& st = self->state;
  const Cycle current = cycle_of(st.services->clock.now());
  if (current <= st.org.cycle) return;
  CycleRolled rolled = rollover_to(st.org, current, st.services->options.free_credits_micros);
  if (rolled.free_credits_micros > 0) rolled.free_credits_payment = PaymentId{random_id()};
  apply_rollover(st.org, rolled);
  // Events admitted in the ended cycle are still in flight: their spend no longer counts here.
  st.in_flight.spend_reserved_earlier_micros += st.in_flight.spend_reserved_micros;
  st.in_flight.spend_reserved_micros = 0;
  journal_ahead(self, make_record(rolled));
  publish(self);
}

ChargeOutcome refused(Refusal refusal, OrgId at) { return ChargeOutcome{ChargeStatus::refused, refusal, false, at}; }
ChargeOutcome accepted(OrgId payer) { return ChargeOutcome{ChargeStatus::accepted, Refusal::none, false, payer}; }

// --- auto-recharge ------------------------------------------------------------------------------

// Charges the payment method for the configured amount and applies the result at once; returns the
// record, which the caller journals. Applying before the commit is safe because every answer that
// depends on it waits for a commit that comes after it (the writer's mailbox is FIFO): a charge the
// credit covers is journaled behind it, and a refusal or an acceptance that triggered it waits for it.
// (The provider is charged before the record exists: a crash in between leaves a charge the provider
// knows by its idempotency key, the payment id, and Canopy does not; reconciling those is the
// provider integration's job.)
RecordPtr auto_recharge(OrgActor* self) {
  auto& st = self->state;
  const auto& cfg = st.org.auto_recharge;
  // Only an org that pays spends its balance: a consolidated one would be charged for nothing.
  if (!st.org.pays_for_itself() || !cfg.enabled || !st.org.payment_method || st.auto_recharge_suspended) return nullptr;
  std::string reason;
  const PaymentId id{random_id()};
  const bool approved = st.services->payments.charge(st.org.id, *st.org.payment_method, cfg.amount_micros,
                                                     to_string(id), reason);
  PaymentRecorded payment{st.org.id, id, PaymentKind::auto_recharge,
                          approved ? PaymentStatus::succeeded : PaymentStatus::failed,
                          cfg.amount_micros, st.services->clock.now(), {}, reason};
  if (!approved) st.auto_recharge_suspended = true;
  domain::apply(st.org, Record{payment});
  publish(self);
  return make_record(payment);
}

bool below_threshold(const OrgActorState& st) {
  return st.org.auto_recharge.enabled &&
         available_balance(st.org, st.in_flight) < st.org.auto_recharge.threshold_micros;
}

// --- the charge chain ---------------------------------------------------------------------------

void finish(OrgActor* self, std::uint64_t batch, RecordPtr committed, Outcomes from_above, bool decided_here,
            std::uint64_t committed_seq);

void forward_up(OrgActor* self, std::uint64_t batch) {
  auto& st = self->state;
  Hop& hop = st.hops.at(batch);
  // The parent's actor is looked up once, not per hop (the lookup was a cold hash-map probe under
  // the directory's lock); again only if the org is ever given another parent.
  if (st.parent_actor_of != st.org.parent) {
    st.parent_actor = st.services->directory.actor_of(st.org.parent);
    st.parent_actor_of = st.org.parent;
  }
  const caf::actor& parent = st.parent_actor;
  CANOPY_ASSERT(parent != nullptr);
  self->send(parent, reserve_atom::value,
             ReserveUp{batch, caf::actor_cast<caf::actor>(self), hop.chain, hop.events, hop.reserved, hop.at});
}

void commit_as_payer(OrgActor* self, std::uint64_t batch) {
  auto& st = self->state;
  const Hop& hop = st.hops.at(batch);
  ChargeBatch record;
  record.chain = hop.chain;
  record.at = hop.at;
  if (hop.reserved.size() == hop.events->size()) {
    record.events = ChargeEvents(hop.events);  // all of them (indexes are unique): shared, not copied
  } else {
    std::vector<ChargeEvent> events;
    events.reserve(hop.reserved.size());
    for (const auto index : hop.reserved) events.push_back((*hop.events)[index]);
    record.events = std::move(events);
  }
  RecordPtr ptr = make_record(std::move(record));
  journal(self, ptr, [self, batch, ptr](std::uint64_t seq) { finish(self, batch, ptr, {}, true, seq); });
}

// Admits `candidates` here in order, reserving each admitted cost, then passes the batch on: up to
// the parent, or (at the payer) to the journal, or straight back when nothing is left to decide.
void admit(OrgActor* self, Hop hop, const std::vector<std::uint32_t>& candidates) {
  auto& st = self->state;
  const bool payer = st.org.pays_for_itself();
  std::vector<RecordPtr> ahead;  // changes applied here that answers depend on: journaled before them
  bool recharged = false;        // at most one card charge per message, whatever the batch holds
  hop.reserved_in_cycle = st.org.cycle;
  for (const auto index : candidates) {
    const Micros cost = (*hop.events)[index].cost_micros;
    Refusal refusal = admit_limit(st.org, st.in_flight, cost);
    if (refusal == Refusal::none && payer) {
      refusal = admit_balance(st.org, st.in_flight, cost);
      // Recharge only when one recharge would cover the event: a client must not be able to make
      // us charge a card for events that stay refused anyway.
      if (refusal == Refusal::insufficient_credits && !recharged &&
          available_balance(st.org, st.in_flight) + st.org.auto_recharge.amount_micros >= cost) {
        if (auto recharge = auto_recharge(self)) {
          recharged = true;
          ahead.push_back(std::move(recharge));
          refusal = admit_balance(st.org, st.in_flight, cost);
        }
      }
    }
    if (refusal != Refusal::none) {
      if (refusal == Refusal::limit_reached && !st.org.paused_flag) {
        // Pause at once, so the rest of this batch and everything after it sees the pause.
        PauseSet pause{st.org.id, st.org.cycle, st.services->clock.now()};
        domain::apply(st.org, Record{pause});
        publish(self);
        ahead.push_back(make_record(pause));
      }
      hop.outcomes.emplace_back(index, refused(refusal, st.org.id));
      continue;
    }
    st.in_flight.spend_reserved_micros += cost;
    hop.spend_reserved_micros += cost;
    if (payer) {
      st.in_flight.debit_reserved_micros += cost;
      hop.debit_reserved_micros += cost;
    }
    hop.reserved.push_back(index);
  }
  CANOPY_ASSERT(hop.chain.size() <= limits::chain_orgs_max);
  const std::uint64_t batch = st.next_batch++;
  const bool nothing_left = hop.reserved.empty();
  st.hops.emplace(batch, std::move(hop));
  // Committed before the payer's record, which comes after them; answers wait for them (answer()).
  for (auto& record : ahead) journal_ahead(self, std::move(record));
  if (nothing_left) {
    finish(self, batch, nullptr, {}, true, 0);
  } else if (payer) {
    commit_as_payer(self, batch);
  } else {
    forward_up(self, batch);
  }
}

// --- ids accepted ahead of the index ----------------------------------------------------------------

// Forgets the generations of accepted ids the writer has indexed since: lookups find them in the
// store now. Returns how far the index was when it looked.
std::uint64_t prune_indexed(OrgActor* self) {
  auto& st = self->state;
  const std::uint64_t indexed = st.services->writer_stats.ids_indexed_seq.load(std::memory_order_acquire);
  while (!st.accepted.empty() && st.accepted.front().seq <= indexed) {
    st.services->unindexed_events_held.fetch_sub(st.accepted.front().events_held, std::memory_order_relaxed);
    st.accepted.pop_front();
  }
  return indexed;
}

// Null when the id is neither being decided nor accepted ahead of the index; else its payer,
// OrgId::none while it is being decided.
const OrgId* known_id(const OrgActorState& st, std::string_view id, std::uint64_t hash) {
  if (const OrgId* payer = st.ids_in_flight.find(id, hash)) return payer;
  for (auto it = st.accepted.rbegin(); it != st.accepted.rend(); ++it) {
    if (const OrgId* payer = it->ids.find(id, hash)) return payer;
  }
  return nullptr;
}

// Starts loading what known_id() will probe for `hash` (see RecentIds::prefetch).
void prefetch_known(const OrgActorState& st, std::uint64_t hash) {
  st.ids_in_flight.prefetch(hash);
  for (const auto& generation : st.accepted) generation.ids.prefetch(hash);
}

// An origin holding accepted ids waits to be told that the index advanced (actors/index_watchers.hpp),
// prunes then, and waits again while it still holds some: each holds its ids until the checkpoint
// that indexes them, charged again or not, with no timer.
void watch_index(OrgActor* self) {
  auto& st = self->state;
  if (st.watching_index) return;
  const std::uint64_t seen = prune_indexed(self);
  if (st.accepted.empty()) return;
  st.watching_index = true;
  st.services->writer_stats.index_watchers.watch(caf::actor_cast<caf::actor>(self), seen);
}

// The origin's ids are decided: the refused are forgotten, the accepted kept, with their payer, until
// the index has them. Their record is committed: the writer published its seq before saying so.
void settle_ids(OrgActor* self, Hop& hop) {
  auto& st = self->state;
  OrgActorState::Accepted* generation = nullptr;
  const auto& ids = hop.origin_ids;
  for (std::size_t k = 0; k < ids.size(); ++k) {
    if (k + RecentIds::prefetch_distance < ids.size()) {
      const std::uint64_t ahead = ids[k + RecentIds::prefetch_distance].hash;
      st.ids_in_flight.prefetch(ahead);
      if (generation) generation->ids.prefetch(ahead);
    }
    const auto& [index, hash] = ids[k];
    const ChargeOutcome& outcome = hop.origin_outcomes[index];
    const std::string_view id = (*hop.events)[index].id;
    st.ids_in_flight.erase(id.data(), hash);
    if (outcome.status != ChargeStatus::accepted) continue;
    if (!generation) {
      const std::uint64_t indexed = st.services->writer_stats.ids_indexed_seq.load(std::memory_order_acquire);
      if (st.accepted.empty() || st.accepted.back().indexed_when_begun != indexed) {
        st.accepted.emplace_back().indexed_when_begun = indexed;
      }
      generation = &st.accepted.back();
    }
    generation->ids.insert(id, hash, outcome.org);
  }
  if (!generation) return;
  // Accepted ids came with the record that accepted them. (Were its seq ever missing, the last seq
  // committed, never below it, keeps them just as safely, a little longer.)
  const std::uint64_t seq = hop.committed_seq != 0 ? hop.committed_seq
                                                  : st.services->writer_stats.committed_seq.load(std::memory_order_acquire);
  generation->seq = std::max(generation->seq, seq);
  generation->events.push_back(hop.events);
  generation->events_held += hop.events->size();
  st.services->unindexed_events_held.fetch_add(hop.events->size(), std::memory_order_relaxed);
  watch_index(self);
}

// Sends the decision on: down to the child, or (at the origin) to the client. Never before every
// change this org applied ahead of the journal is durable: a refusal may report a pause, and a kill -9
// right after an answer must not lose what it reported.
void answer(OrgActor* self, std::shared_ptr<Hop> hop, RecordPtr committed, Outcomes outcomes,
            bool barrier_passed = false) {
  auto& st = self->state;
  // A barrier covers everything sent before it; records applied after it do not concern this answer.
  if (st.unconfirmed_ahead > 0 && !barrier_passed) {
    after_barrier(self, [self, hop, committed, outcomes](std::uint64_t) mutable {
      answer(self, hop, std::move(committed), std::move(outcomes), true);
    });
    return;
  }
  if (hop->child) {
    self->send(hop->child, decide_atom::value,
               DecisionDown{hop->child_batch, std::move(committed), hop->committed_seq, std::move(outcomes)});
    return;
  }
  for (auto& [index, outcome] : outcomes) hop->origin_outcomes[index] = outcome;
  settle_ids(self, *hop);
  hop->reply(std::move(hop->origin_outcomes));
}

// The decision for a batch is known: apply it here, release what was reserved, answer down.
void finish(OrgActor* self, std::uint64_t batch, RecordPtr committed, Outcomes from_above, bool decided_here,
            std::uint64_t committed_seq) {
  auto& st = self->state;
  auto node = st.hops.extract(batch);
  CANOPY_ASSERT(!node.empty());
  auto hop = std::make_shared<Hop>(std::move(node.mapped()));
  hop->committed_seq = committed_seq;
  (hop->reserved_in_cycle == st.org.cycle ? st.in_flight.spend_reserved_micros
                                          : st.in_flight.spend_reserved_earlier_micros) -= hop->spend_reserved_micros;
  st.in_flight.debit_reserved_micros -= hop->debit_reserved_micros;
  CANOPY_ASSERT(st.in_flight.spend_reserved_micros >= 0 && st.in_flight.debit_reserved_micros >= 0 &&
                st.in_flight.spend_reserved_earlier_micros >= 0);
  RecordPtr recharge;
  if (committed) {
    domain::apply(st.org, *committed);
    publish(self);
    if (below_threshold(st)) recharge = auto_recharge(self);
  }
  Outcomes outcomes = std::move(hop->outcomes);
  if (decided_here) {
    for (const auto index : hop->reserved) outcomes.emplace_back(index, accepted(st.org.id));
  } else {
    outcomes.insert(outcomes.end(), from_above.begin(), from_above.end());
  }
  // The client sees the balance a recharge made: answer() waits until it is durable.
  if (recharge) journal_ahead(self, std::move(recharge));
  answer(self, std::move(hop), std::move(committed), std::move(outcomes));
}

// For each event: its payer if the id was accepted before, else none (also for an id being decided,
// which the caller finds in ids_in_flight). An accepted id is in `accepted` from its answer until the
// state committer has indexed it, and in the store's event-id index from then on (WriterStats::ids_indexed_seq);
// one read transaction answers the ids memory does not know.
std::vector<std::optional<OrgId>> accepted_before(OrgActorState& st, const std::vector<ChargeEvent>& events,
                                                  const std::vector<std::uint64_t>& id_hashes) {
  std::vector<std::optional<OrgId>> payers(events.size());
  // Reused per thread (an actor never yields inside this function): no key allocation per event.
  thread_local std::vector<std::string> keys;
  thread_local std::vector<std::size_t> asked;
  thread_local std::vector<std::optional<std::string>> values;
  asked.clear();
  for (std::size_t i = 0; i < events.size(); ++i) {
    const std::size_t ahead = i + RecentIds::prefetch_distance;
    if (ahead < events.size()) prefetch_known(st, id_hashes[ahead]);
    if (const OrgId* known = known_id(st, events[i].id, id_hashes[i])) {  // answered from memory
      if (*known != OrgId::none) payers[i] = *known;
      continue;
    }
    if (keys.size() <= asked.size()) keys.emplace_back();
    persistence::assign_scoped_key(keys[asked.size()], raw(st.org.id), events[i].id);
    asked.push_back(i);
  }
  if (asked.empty()) return payers;
  const auto status = st.services->store.get_many(persistence::Table::event_ids,
                                                  std::span<const std::string>(keys.data(), asked.size()), values);
  CANOPY_ASSERT(status.ok());  // a store that cannot be read cannot tell retries from new events
  for (std::size_t k = 0; k < asked.size(); ++k) {
    if (!values[k]) continue;
    const auto row = persistence::decode_event_id_row(*values[k]);
    CANOPY_ASSERT(row.has_value());  // the writer wrote it: anything else is a corrupt store
    payers[asked[k]] = row->payer;
  }
  return payers;
}

void on_charge(OrgActor* self, ChargeRequest& request) {
  roll_cycle_if_due(self);
  prune_indexed(self);
  auto& st = self->state;
  const auto& events = *request.events;
  Hop hop;
  hop.events = request.events;
  hop.at = request.at;
  hop.reply = std::move(request.reply);
  hop.chain = {ChainHop{st.org.id, st.org.cycle}};
  hop.origin_outcomes.resize(events.size());
  const ModuleSet effective = request.modules;
  std::vector<std::uint32_t> candidates;
  candidates.reserve(events.size());
  thread_local std::vector<std::uint64_t> id_hashes;  // each id hashed once, while its bytes are warm
  id_hashes.clear();
  for (const auto& event : events) id_hashes.push_back(RecentIds::hash(event.id));
  const auto earlier = accepted_before(st, events, id_hashes);
  for (std::uint32_t i = 0; i < events.size(); ++i) {
    const auto& event = events[i];
    // Looked up again, not taken from `earlier`: an id twice in this batch is in flight from its first.
    if (st.ids_in_flight.find(event.id, id_hashes[i])) {
      hop.origin_outcomes[i] = ChargeOutcome{ChargeStatus::refused, Refusal::none, true, st.org.id};
    } else if (const auto& payer = earlier[i]) {
      hop.origin_outcomes[i] = accepted(*payer);  // a retry: the first answer, nothing charged
    } else if (auto module = module_of_event_type(event.type); !module || !(effective & bit(*module))) {
      hop.origin_outcomes[i] = refused(Refusal::module_disabled, st.org.id);
    } else {
      st.ids_in_flight.insert(event.id, id_hashes[i]);
      hop.origin_ids.push_back(Hop::InFlightId{i, id_hashes[i]});
      candidates.push_back(i);
    }
  }
  admit(self, std::move(hop), candidates);
}

void on_reserve(OrgActor* self, ReserveUp& up) {
  roll_cycle_if_due(self);
  auto& st = self->state;
  Hop hop;
  hop.events = std::move(up.events);
  hop.at = up.at;
  hop.child = std::move(up.child);
  hop.child_batch = up.child_batch;
  hop.chain = std::move(up.chain);
  hop.chain.push_back(ChainHop{st.org.id, st.org.cycle});
  admit(self, std::move(hop), up.admitted);
}

// --- commands -----------------------------------------------------------------------------------

CommandResult ok_result(const OrgActorState& st, RecordPtr record) {
  CommandResult r;
  r.org = std::make_shared<const OrgState>(st.org);
  r.record = std::move(record);
  return r;
}

CommandResult error_result(Error error) {
  CommandResult r;
  r.ok = false;
  r.error = std::move(error);
  return r;
}

// Journals `record`, then applies it here, publishes and answers.
void commit_and_reply(OrgActor* self, Record record, Reply<CommandResult> reply) {
  RecordPtr ptr = make_record(std::move(record));
  journal(self, ptr, [self, ptr, reply = std::move(reply)](std::uint64_t) {
    domain::apply(self->state.org, *ptr);
    publish(self);
    reply(ok_result(self->state, ptr));
  });
}

// Applies `record` here at once, publishes, and journals it ahead of whatever this org decides next;
// answers once it is durable. For a change that decisions taken after it must see in the journal's
// order (a limit change): applied only at its commit, a charge refused under the old limit while it
// was in flight would journal a pause behind it, and memory and the journal would disagree.
void apply_ahead_and_reply(OrgActor* self, Record record, Reply<CommandResult> reply) {
  auto& st = self->state;
  RecordPtr ptr = make_record(std::move(record));
  domain::apply(st.org, *ptr);
  publish(self);
  journal_ahead(self, ptr, [self, ptr, reply = std::move(reply)](std::uint64_t) { reply(ok_result(self->state, ptr)); });
}

// A top-up or transfer with this key was decided before: the record that decided it.
std::optional<Record> earlier_payment(const OrgActorState& st, const std::string& key) {
  return persistence::decided_payment(st.services->store, st.org.id, key);
}

struct CommandVisitor {
  OrgActor* self;
  Reply<CommandResult>& reply;

  OrgActorState& st() const { return self->state; }
  Timestamp now() const { return st().services->clock.now(); }

  void operator()(Rename& c) const { commit_and_reply(self, OrgRenamed{st().org.id, std::move(c.name)}, std::move(reply)); }

  void operator()(CreateSubOrg& c) const {
    const auto lineage = st().services->directory.lineage(st().org.id);
    if (auto err = check_create_sub_org(raw_lineage(lineage), c.max_depth)) return reply(error_result(*err));
    OrgCreated created;
    created.org = OrgId{random_id()};
    created.parent = st().org.id;
    created.name = std::move(c.name);
    created.depth = static_cast<std::uint8_t>(st().org.depth + 1);
    created.at = now();
    created.cycle = cycle_of(created.at);
    RecordPtr ptr = make_record(created);
    auto* actor = self;
    journal(self, ptr, [actor, ptr, reply = std::move(reply)](std::uint64_t) {
      auto child = std::make_shared<const OrgState>(make_org(std::get<OrgCreated>(*ptr)));
      actor->state.services->directory.publish(child);
      CommandResult r = ok_result(actor->state, ptr);
      r.created = child;
      reply(std::move(r));
    });
  }

  void operator()(SetLimit& c) const {
    if (c.limit_micros) {
      if (auto err = check_limit(*c.limit_micros)) return reply(error_result(*err));
    }
    apply_ahead_and_reply(self, LimitSet{st().org.id, c.limit_micros, now()}, std::move(reply));
  }

  void operator()(SetConsolidated& c) const {
    if (auto err = check_set_consolidated(st().org)) return reply(error_result(*err));
    commit_and_reply(self, ConsolidatedSet{st().org.id, c.enabled}, std::move(reply));
  }

  void operator()(SetSubscription& c) const {
    if (!c.plan && !st().org.subscription) {
      return reply(error_result(Error{Errc::not_found, "This organization has no subscription to cancel"}));
    }
    commit_and_reply(self, SubscriptionSet{st().org.id, c.plan}, std::move(reply));
  }

  void operator()(SetPaymentMethod& c) const {
    if (c.method) {
      if (auto err = check_payment_method(*c.method, now())) return reply(error_result(*err));
    }
    st().auto_recharge_suspended = false;
    commit_and_reply(self, PaymentMethodSet{st().org.id, std::move(c.method)}, std::move(reply));
  }

  void operator()(SetAutoRecharge& c) const {
    if (auto err = check_auto_recharge(st().org, c.config)) return reply(error_result(*err));
    st().auto_recharge_suspended = false;
    commit_and_reply(self, AutoRechargeSet{st().org.id, c.config}, std::move(reply));
  }

  void operator()(Grant& c) const {
    if (auto err = check_amount("amount_micros", c.amount_micros)) return reply(error_result(*err));
    commit_and_reply(self,
                     PaymentRecorded{st().org.id, PaymentId{random_id()}, PaymentKind::grant, PaymentStatus::succeeded,
                                     c.amount_micros, now(), {}, std::move(c.reason)},
                     std::move(reply));
  }

  // Replays an earlier decision for the same key, or refuses a key reused for something else.
  bool replay_key(const std::string& key, const std::function<bool(const Record&)>& same) const {
    if (st().keys_in_flight.count(key)) {
      reply(error_result(Error{Errc::conflict, "A request with this Idempotency-Key is still being processed; retry"}));
      return true;
    }
    if (auto earlier = earlier_payment(st(), key)) {
      if (!same(*earlier)) {
        reply(error_result(Error{Errc::idempotency_key_reused,
                                 "This Idempotency-Key was used with a different request"}));
      } else {
        reply(ok_result(st(), make_record(std::move(*earlier))));
      }
      return true;
    }
    return false;
  }

  void operator()(TopUp& c) const {
    if (auto err = check_amount("amount_micros", c.amount_micros)) return reply(error_result(*err));
    const auto amount = c.amount_micros;
    if (replay_key(c.idempotency_key, [amount](const Record& r) {
          const auto* p = std::get_if<PaymentRecorded>(&r);
          return p && p->kind == PaymentKind::top_up && p->amount_micros == amount;
        })) {
      return;
    }
    if (auto err = check_top_up(st().org)) return reply(error_result(*err));
    std::string reason;
    const PaymentId id{random_id()};
    const bool approved = st().services->payments.charge(st().org.id, *st().org.payment_method, c.amount_micros,
                                                         c.idempotency_key, reason);
    st().keys_in_flight.insert(c.idempotency_key);
    PaymentRecorded payment{st().org.id, id, PaymentKind::top_up,
                            approved ? PaymentStatus::succeeded : PaymentStatus::failed,
                            c.amount_micros, now(), c.idempotency_key, reason};
    auto* actor = self;
    commit_and_reply(self, payment, [actor, key = c.idempotency_key, reply = std::move(reply)](CommandResult r) {
      actor->state.keys_in_flight.erase(key);
      reply(std::move(r));
    });
  }

  void operator()(Touch&) const;

  void operator()(SetCustomization& c) const {
    commit_and_reply(self, CustomizationSet{st().org.id, std::move(c.name), std::move(c.customization)}, std::move(reply));
  }

  void operator()(SetShowCredits& c) const {
    if (auto err = check_show_credits(st().org, c.enabled)) return reply(error_result(*err));
    commit_and_reply(self, ShowCreditsSet{st().org.id, c.enabled}, std::move(reply));
  }

  void operator()(Invite& c) const {
    const std::string email = normalize_email(c.email);
    const auto invitee = st().services->directory.user_by_email(email);
    if (auto err = check_invite(st().org, c.actor, c.role, invitee, now())) return reply(error_result(*err));
    Invitation inv;
    inv.id = InvitationId{random_id()};
    inv.email = email;
    inv.role = c.role;
    inv.invited_by = c.invited_by;
    inv.created_at = now();
    inv.expires_at = inv.created_at + static_cast<Timestamp>(c.expiry_hours) * 3600;
    inv.token_hash = c.token_hash;
    auto* actor = self;
    commit_then(InvitationCreated{st().org.id, inv}, [actor, inv](const RecordPtr&) {
      actor->state.services->directory.publish_invitation(inv.token_hash, InvitationRef{actor->state.org.id, inv.id, false});
    });
  }

  void operator()(RevokeInvitation& c) const {
    const auto& invs = st().org.invitations;
    auto it = std::find_if(invs.begin(), invs.end(), [&](const Invitation& i) { return i.id == c.invitation; });
    if (it == invs.end() || st().accepting.count(c.invitation)) {
      return reply(error_result(Error{Errc::not_found, "No pending invitation with this id in this organization"}));
    }
    const TokenHash hash = it->token_hash;
    auto* actor = self;
    commit_then(InvitationRevoked{st().org.id, c.invitation, hash},
                [actor, hash](const RecordPtr&) { actor->state.services->directory.forget_invitation(hash); });
  }

  void operator()(AcceptInvitation& c) const;

  void operator()(ChangeMember& c) const {
    if (auto err = check_change_member(st().org, c.actor, c.user, c.role)) return reply(error_result(*err));
    commit_and_reply(self, MemberSet{st().org.id, c.user, c.role}, std::move(reply));
  }

  void operator()(SetMyRole& c) const {
    if (auto err = check_set_my_role(st().org, c.actor, c.user, c.role)) return reply(error_result(*err));
    commit_and_reply(self, MemberSet{st().org.id, c.user, c.role}, std::move(reply));
  }

  void operator()(Leave& c) const {
    if (auto err = check_leave(st().org, c.user)) return reply(error_result(*err));
    commit_and_reply(self, MemberSet{st().org.id, c.user, std::nullopt}, std::move(reply));
  }

  void operator()(CreateApiKey& c) const {
    if (auto err = check_create_api_key(st().org)) return reply(error_result(*err));
    ApiKey key{KeyId{random_id()}, std::move(c.name), std::move(c.hint), c.created_by, now(), c.token_hash};
    auto* actor = self;
    commit_then(ApiKeyCreated{st().org.id, key}, [actor, key](const RecordPtr&) {
      actor->state.services->directory.publish_api_key(key.token_hash, actor->state.org.id, key.id);
    });
  }

  void operator()(RevokeApiKey& c) const {
    const auto& keys = st().org.api_keys;
    auto it = std::find_if(keys.begin(), keys.end(), [&](const ApiKey& k) { return k.id == c.key; });
    if (it == keys.end()) return reply(error_result(Error{Errc::not_found, "No API key with this id in this organization"}));
    const TokenHash hash = it->token_hash;
    auto* actor = self;
    commit_then(ApiKeyRevoked{st().org.id, c.key, hash},
                [actor, hash](const RecordPtr&) { actor->state.services->directory.forget_token(hash); });
  }

  void operator()(SetAlerts& c) const {
    commit_and_reply(self, AlertsSet{st().org.id, std::move(c.config)}, std::move(reply));
  }

  void operator()(CreateWebhook& c) const {
    if (st().org.webhooks.size() >= limits::webhooks_per_org_max) {
      return reply(error_result(Error{Errc::conflict, "This organization has " + std::to_string(limits::webhooks_per_org_max) +
                                                          " webhooks, the most it can hold; delete one first"}));
    }
    Webhook hook{WebhookId{random_id()}, std::move(c.url), c.events, std::move(c.secret), now()};
    commit_and_reply(self, WebhookCreated{st().org.id, std::move(hook)}, std::move(reply));
  }

  void operator()(DeleteWebhook& c) const {
    const auto& hooks = st().org.webhooks;
    if (std::none_of(hooks.begin(), hooks.end(), [&](const Webhook& w) { return w.id == c.webhook; })) {
      return reply(error_result(Error{Errc::not_found, "No webhook with this id in this organization"}));
    }
    commit_and_reply(self, WebhookDeleted{st().org.id, c.webhook}, std::move(reply));
  }

  // Journals `record`, applies it, runs `also` (publishing what the directory indexes besides the org)
  // and answers: all before the client hears back, so its next request sees the change.
  template <class F>
  void commit_then(Record record, F also) const {
    RecordPtr ptr = make_record(std::move(record));
    auto* actor = self;
    journal(self, ptr, [actor, ptr, also = std::move(also), reply = std::move(reply)](std::uint64_t) {
      domain::apply(actor->state.org, *ptr);
      publish(actor);
      also(ptr);
      reply(ok_result(actor->state, ptr));
    });
  }

  void operator()(Transfer& c) const {
    const auto to = c.to;
    const auto amount = c.amount_micros;
    if (replay_key(c.idempotency_key, [to, amount](const Record& r) {
          const auto* t = std::get_if<TransferRecorded>(&r);
          return t && t->to == to && t->amount_micros == amount;
        })) {
      return;
    }
    const auto to_lineage = st().services->directory.lineage(c.to);
    const Micros available = available_balance(st().org, st().in_flight);
    if (auto err = check_transfer(st().org, available, raw_lineage(to_lineage), c.amount_micros)) {
      return reply(error_result(*err));
    }
    // Reserve the amount until the record is durable, so a charge or another transfer cannot spend it.
    st().in_flight.debit_reserved_micros += c.amount_micros;
    st().keys_in_flight.insert(c.idempotency_key);
    TransferRecorded transfer{st().org.id, c.to, PaymentId{random_id()}, PaymentId{random_id()},
                              c.amount_micros, now(), c.idempotency_key};
    RecordPtr ptr = make_record(transfer);
    auto* actor = self;
    journal(self, ptr, [actor, ptr, transfer, reply = std::move(reply)](std::uint64_t) {
      auto& s = actor->state;
      s.in_flight.debit_reserved_micros -= transfer.amount_micros;
      s.keys_in_flight.erase(transfer.idempotency_key);
      domain::apply(s.org, *ptr);
      publish(actor);
      CommandResult result = ok_result(s, ptr);
      // The receiving org applies it too before the client hears back, so its next read shows it.
      caf::actor dest = s.services->directory.actor_of(transfer.to);
      CANOPY_ASSERT(dest != nullptr);
      actor->send(dest, credit_atom::value, CreditApply{ptr, [result, reply](CommandResult) { reply(result); }});
    });
  }
};

// Commits an acceptance (with the new user, if it creates one) and answers once it is durable and
// published: the membership, the user and their token, and the link marked used.
void commit_acceptance(OrgActor* self, InvitationAccepted record, Reply<CommandResult> reply) {
  self->state.accepting.insert(record.invitation);
  RecordPtr ptr = make_record(std::move(record));
  journal(self, ptr, [self, ptr, reply = std::move(reply)](std::uint64_t) {
    auto& s = self->state;
    const auto& r = std::get<InvitationAccepted>(*ptr);
    if (r.new_user) {
      const auto& u = *r.new_user;
      s.services->directory.publish_user(UserInfo{u.user, u.email, u.name, u.at, OrgId::none}, u.token_hash);
      self->send(s.services->registry, email_atom::value, release_atom::value, u.email);
    }
    s.services->directory.publish_invitation(r.token_hash, InvitationRef{s.org.id, r.invitation, true});
    s.accepting.erase(r.invitation);
    domain::apply(s.org, *ptr);
    publish(self);
    reply(ok_result(s, ptr));
  });
}

void CommandVisitor::operator()(AcceptInvitation& c) const {
  auto& state = st();
  auto& directory = state.services->directory;
  const Invitation* inv = state.org.find_invitation(c.token_hash);
  if (!inv) {
    // Gone from the org: accepted (the token index remembers) or expired and dropped.
    const auto ref = directory.invitation(c.token_hash);
    return reply(error_result(ref && ref->used ? invitation_used_error() : invitation_expired_error()));
  }
  if (state_at(*inv, now()) == InvitationState::expired) return reply(error_result(invitation_expired_error()));
  if (state.accepting.count(inv->id)) return reply(error_result(invitation_used_error()));

  InvitationAccepted accepted{state.org.id, inv->id, inv->token_hash, UserId::none, inv->role, now(), std::nullopt};
  if (c.signed_in) {
    accepted.user = *c.signed_in;
  } else if (const auto existing = directory.user_by_email(inv->email)) {
    accepted.user = *existing;
  }
  if (accepted.user != UserId::none) {
    if (state.org.find_member(accepted.user)) {
      return reply(error_result(Error{Errc::conflict, "This user is already a member of this organization"}));
    }
    return commit_acceptance(self, std::move(accepted), std::move(reply));
  }
  // A new user: the registry reserves the email (it alone decides email uniqueness), then the user and
  // the membership are committed in one record.
  const std::string name = c.name.empty() ? inv->email.substr(0, inv->email.find('@')) : c.name;
  UserCreated user{UserId{random_id()}, inv->email, name, c.new_user_token_hash, now()};
  state.accepting.insert(inv->id);
  auto* actor = self;
  self->request(state.services->registry, caf::infinite, email_atom::value, reserve_atom::value, user.email)
      .then([actor, accepted, user, reply = std::move(reply)](bool reserved) mutable {
        actor->state.accepting.erase(accepted.invitation);
        if (!reserved) {
          return reply(error_result(Error{Errc::conflict, "A user with this email is being created right now; retry"}));
        }
        accepted.user = user.user;
        accepted.new_user = std::move(user);
        commit_acceptance(actor, std::move(accepted), std::move(reply));
      });
}

void CommandVisitor::operator()(Touch&) const {
  // roll_cycle_if_due() ran before this command; the barrier answers once its record is committed.
  auto* actor = self;
  after_barrier(self, [actor, reply = std::move(reply)](std::uint64_t) { reply(ok_result(actor->state, nullptr)); });
}

void run_command(OrgActor* self, CommandRequest& request);

// Starts the next stashed command, if any.
void next_command(OrgActor* self) {
  auto& st = self->state;
  st.command_busy = false;
  if (st.stashed.empty()) return;
  CommandRequest next = std::move(st.stashed.front());
  st.stashed.pop_front();
  run_command(self, next);
}

// Gives a command's answer once every change this org applied ahead of the journal is durable: the
// answer shows the org as it is here, pause, limit or recharged balance included, and a kill -9 after
// a 200 must not take back what it showed. Then the next command starts.
void finish_command(OrgActor* self, CommandDone done) {
  auto deliver = [self, done = std::move(done)](std::uint64_t = 0) mutable {
    done.reply(std::move(done.result));
    next_command(self);
  };
  if (self->state.unconfirmed_ahead > 0) return after_barrier(self, std::move(deliver));
  deliver();
}

// Runs one command. Its reply, from whichever thread gives it, comes back to this actor (done_atom),
// which answers (finish_command), and only then does the next stashed command start.
void run_command(OrgActor* self, CommandRequest& request) {
  self->state.command_busy = true;
  request.reply = [me = caf::actor_cast<caf::actor>(self), inner = std::move(request.reply)](CommandResult r) {
    caf::anon_send(me, done_atom::value, CommandDone{std::move(r), inner});
  };
  roll_cycle_if_due(self);
  std::visit(CommandVisitor{self, request.reply}, request.command);
}

caf::behavior org_actor(OrgActor* self, Services* services, Directory::Entry* entry, OrgPtr initial) {
  self->state.services = services;
  self->state.directory_entry = entry;
  self->state.org = *initial;
  return {
      [=](charge_atom, ChargeRequest& request) { on_charge(self, request); },
      [=](committed_atom, std::uint64_t token, std::uint64_t seq) {
        auto node = self->state.awaiting_commit.extract(token);
        CANOPY_ASSERT(!node.empty());
        node.mapped()(seq);
      },
      [=](reserve_atom, ReserveUp& up) { on_reserve(self, up); },
      [=](prune_atom) {
        self->state.watching_index = false;
        watch_index(self);  // prunes, and waits again while it still holds ids
      },
      [=](decide_atom, DecisionDown& down) {
        finish(self, down.child_batch, std::move(down.committed), std::move(down.outcomes), false, down.committed_seq);
      },
      [=](command_atom, CommandRequest& request) {
        if (self->state.command_busy) return self->state.stashed.push_back(std::move(request));
        run_command(self, request);
      },
      [=](done_atom, CommandDone& done) { finish_command(self, std::move(done)); },
      [=](credit_atom, CreditApply& credit) {
        roll_cycle_if_due(self);
        domain::apply(self->state.org, *credit.record);
        publish(self);
        credit.reply(ok_result(self->state, credit.record));
      },
  };
}

}  // namespace

caf::actor spawn_org_actor(Services& services, Directory::Entry& entry) {
  return services.system.spawn(org_actor, &services, &entry, entry.snapshot());
}

}  // namespace canopy::actors
