// The messages org actors, the registry and the persistence writer exchange, and the replies they
// give the gateway.
//
// Replies to the gateway are callbacks (`Reply<T>`), invoked exactly once by the actor that finishes
// the work, on that actor's thread; the gateway's callback only posts the result back to its own
// connection strand. Actor-to-actor hops are one-way messages, not requests with timeouts: in one
// process a message to a live actor cannot be lost, and a hop that timed out while the payer still
// committed would tell the client "refused" about money that moved. The client-facing deadline lives
// in the gateway (limits::request_deadline), and a retry with the same id is always safe.
//
// These types are local-only for now (CAF_ALLOW_UNSAFE_MESSAGE_TYPE); scale-out across nodes will
// give the hop messages `inspect` overloads and replace callbacks with a gateway actor per node.
#pragma once

#include <caf/all.hpp>

#include <functional>
#include <memory>
#include <variant>
#include <vector>

#include "domain/access.hpp"
#include "domain/charge.hpp"
#include "domain/records.hpp"

namespace canopy::actors {

// --- atoms (CAF 0.17: at most 10 characters) -----------------------------------------------------
using append_atom = caf::atom_constant<caf::atom("append")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using checkpoint_atom = caf::atom_constant<caf::atom("checkpnt")>;
using sync_atom = caf::atom_constant<caf::atom("sync")>;
using barrier_atom = caf::atom_constant<caf::atom("barrier")>;
using meta_atom = caf::atom_constant<caf::atom("meta")>;
using committed_atom = caf::atom_constant<caf::atom("committed")>;
using charge_atom = caf::atom_constant<caf::atom("charge")>;
using reserve_atom = caf::atom_constant<caf::atom("reserve")>;
using decide_atom = caf::atom_constant<caf::atom("decide")>;
using prune_atom = caf::atom_constant<caf::atom("prune")>;
using usage_atom = caf::atom_constant<caf::atom("usage")>;
using state_done_atom = caf::atom_constant<caf::atom("statedone")>;
using ids_sorted_atom = caf::atom_constant<caf::atom("idssorted")>;
using command_atom = caf::atom_constant<caf::atom("command")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using credit_atom = caf::atom_constant<caf::atom("credit")>;
using user_atom = caf::atom_constant<caf::atom("user")>;
using root_atom = caf::atom_constant<caf::atom("root")>;
using email_atom = caf::atom_constant<caf::atom("email")>;
using release_atom = caf::atom_constant<caf::atom("release")>;

template <class T>
using Reply = std::function<void(T)>;

using RecordPtr = std::shared_ptr<const domain::Record>;

// --- charging ------------------------------------------------------------------------------------

enum class ChargeStatus : std::uint8_t { accepted, refused };

struct ChargeOutcome {
  ChargeStatus status = ChargeStatus::refused;
  domain::Refusal refusal = domain::Refusal::none;  // when refused
  bool in_progress = false;                         // refused: the same id is still being processed
  domain::OrgId org = domain::OrgId::none;          // refused: the org that refused; accepted: the payer
};

using Events = std::shared_ptr<const std::vector<domain::ChargeEvent>>;

// Gateway -> origin org: a batch of events for that org (a single event is a batch of one).
struct ChargeRequest {
  Events events;
  domain::Timestamp at = 0;
  // The modules in effect at the origin (domain::effective_modules) in the lineage the gateway read
  // to authorize the request, so the lineage is read once. Like the authorization, they are as of
  // the request's arrival: a module turned off by a request answered before it arrived is seen.
  // None by default: a sender that leaves them out has its events refused, never let through.
  domain::ModuleSet modules = 0;
  Reply<std::vector<ChargeOutcome>> reply;
};

// Child -> parent: the events of one origin batch still admitted, reserved on every org so far.
struct ReserveUp {
  std::uint64_t child_batch = 0;
  caf::actor child;
  std::vector<domain::ChainHop> chain;  // origin .. child
  Events events;
  std::vector<std::uint32_t> admitted;  // indexes into *events
  domain::Timestamp at = 0;
};

// Parent -> child: what became of the admitted events. `committed` is the journal record of the
// accepted ones (null when none were), already durable.
struct DecisionDown {
  std::uint64_t child_batch = 0;
  RecordPtr committed;  // holds a domain::ChargeBatch
  std::uint64_t committed_seq = 0;  // its journal seq (0 with no record): when the index will have its ids
  std::vector<std::pair<std::uint32_t, ChargeOutcome>> outcomes;
};

// --- everything else an org does -------------------------------------------------------------------

// Result of a command: the org as it is after it (the gateway shapes the response) or the refusal.
struct CommandResult {
  std::shared_ptr<const domain::OrgState> org;  // the org the command was sent to, after it
  std::shared_ptr<const domain::OrgState> created;  // create_sub_org: the new org
  domain::Error error;
  bool ok = true;
  std::shared_ptr<const domain::Record> record;  // the committed record, if any
};

struct Rename { std::string name; };
struct CreateSubOrg { std::string name; std::uint32_t max_depth = 0; };
struct SetLimit { std::optional<domain::Micros> limit_micros; };
struct SetConsolidated { bool enabled = false; };
struct SetSubscription { std::optional<domain::Plan> plan; };
struct SetPaymentMethod { std::optional<domain::PaymentMethod> method; };
struct SetAutoRecharge { domain::AutoRecharge config; };
struct Grant { domain::Micros amount_micros = 0; std::string reason; };
struct TopUp { domain::Micros amount_micros = 0; std::string idempotency_key; };
struct Transfer { domain::OrgId to = domain::OrgId::none; domain::Micros amount_micros = 0; std::string idempotency_key; };
// Brings the org into the current cycle and answers once that is durable: reads of stored history
// (payments) send it first, so a new cycle's free credits are listed before any write.
struct Touch {};

// Tenant settings.
struct SetCustomization { std::string name; domain::Customization customization; };
struct SetShowCredits { bool enabled = false; };

// Members. `actor` is how the caller reaches the org (the rules differ for admins and managers).
// Secrets (invitation links, API keys, a new user's token) are made by the gateway, which shows them
// once; commands carry only their hashes.
struct Invite {
  std::string email;
  domain::Role role = domain::Role::agent;
  domain::Access actor;
  domain::UserId invited_by = domain::UserId::none;
  domain::TokenHash token_hash{};
  std::uint32_t expiry_hours = 0;
};
struct RevokeInvitation { domain::InvitationId invitation = domain::InvitationId::none; };
// Accepts the invitation whose link token hashes to `token_hash`: for the signed-in user if any, else
// for the user with the invited email, else for a new user with `name` and `new_user_token_hash`.
struct AcceptInvitation {
  domain::TokenHash token_hash{};
  std::optional<domain::UserId> signed_in;
  std::string name;
  domain::TokenHash new_user_token_hash{};
};
struct ChangeMember { domain::UserId user = domain::UserId::none; std::optional<domain::Role> role; domain::Access actor; };
struct SetMyRole { domain::UserId user = domain::UserId::none; domain::Role role = domain::Role::agent; domain::Access actor; };
struct Leave { domain::UserId user = domain::UserId::none; };
struct CreateApiKey {
  std::string name;
  std::string hint;
  domain::UserId created_by = domain::UserId::none;
  domain::TokenHash token_hash{};
};
struct RevokeApiKey { domain::KeyId key = domain::KeyId::none; };

// Alerts and webhooks.
struct SetAlerts { domain::AlertConfig config; };
struct CreateWebhook { std::string url; domain::AlertTypeSet events = 0; std::string secret; };
struct DeleteWebhook { domain::WebhookId webhook = domain::WebhookId::none; };

using Command = std::variant<Rename, CreateSubOrg, SetLimit, SetConsolidated, SetSubscription, SetPaymentMethod,
                             SetAutoRecharge, Grant, TopUp, Transfer, Touch, SetCustomization, SetShowCredits,
                             Invite, RevokeInvitation, AcceptInvitation, ChangeMember, SetMyRole, Leave,
                             CreateApiKey, RevokeApiKey, SetAlerts, CreateWebhook, DeleteWebhook>;

struct CommandRequest {
  Command command;
  Reply<CommandResult> reply;
};

// Org -> itself: a command's answer, to be given once what it may show is durable (run_command).
struct CommandDone {
  CommandResult result;
  Reply<CommandResult> reply;
};

// Org -> another org: apply a committed record that touches it too (the receiving end of a transfer).
struct CreditApply {
  RecordPtr record;
  Reply<CommandResult> reply;
};

// --- registry ------------------------------------------------------------------------------------

struct CreateUser {
  std::string email;
  std::string name;
  Reply<std::variant<domain::Error, std::pair<domain::UserId, std::string>>> reply;  // id and token
};

struct CreateRoot {
  std::string name;
  domain::Plan plan = domain::Plan::free;
  domain::UserId owner = domain::UserId::none;
  Reply<CommandResult> reply;
};

}  // namespace canopy::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(canopy::actors::RecordPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(canopy::actors::ChargeRequest)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(canopy::actors::ReserveUp)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(canopy::actors::DecisionDown)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(canopy::actors::CommandRequest)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(canopy::actors::CreditApply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(canopy::actors::CommandDone)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(canopy::actors::CreateUser)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(canopy::actors::CreateRoot)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<canopy::domain::OrgId>)
