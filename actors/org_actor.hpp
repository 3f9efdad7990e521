// One actor per organization: it owns the org's state and is the only thing that changes it.
//
// Messages (messages.hpp):
//   charge_atom  + ChargeRequest  – from the gateway: events whose origin is this org
//   reserve_atom + ReserveUp      – from a child: events passing through on their way to the payer
//   decide_atom  + DecisionDown   – from the parent: what became of events this org passed up
//   command_atom + CommandRequest – every other change (rename, limits, billing, sub-orgs, money)
//   credit_atom  + CreditApply    – a committed record that touches this org too (transfer in)
//
// The charge chain (why it is safe): each org admits an event against its own limit (and, at the
// payer, its balance) and *reserves* the cost before passing it up, so concurrent events can never
// share the same headroom. The payer journals one ChargeBatch record for everything it accepted and,
// once the writer confirms the commit, the decision walks back down the same chain: each org applies
// the record (spend), releases its reservations and publishes its new snapshot; the origin answers the
// client last, so whatever the client reads next already shows the charge. A batch of events for one
// org travels as one message per hop and one record.
//
// State changes are applied after their record is committed, except a few applied as they are
// journaled, because decisions after them must see them and every later record depends on them
// through the writer's FIFO order: a cycle rollover (what every read shows anyway), a pause (it only
// refuses more), an auto-recharge, and a limit change (a pause journaled behind it must also come
// after it in memory). Nothing is answered until they are committed, and they commute with the
// changes applied at commit, so the org in memory is always the fold of the journal.
#pragma once

#include <caf/all.hpp>

#include "actors/directory.hpp"

namespace canopy::actors {

class Services;

// `entry`: the org's place in the directory, holding its current snapshot; the actor starts from that
// snapshot and publishes its next ones there. REQUIRES: the directory's lock is held.
caf::actor spawn_org_actor(Services& services, Directory::Entry& entry);

}  // namespace canopy::actors
