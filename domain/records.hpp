// Journal records: every durable change Canopy makes is one of these.
//
// A record is a fact that has been decided (by the one actor allowed to decide it) and, once
// committed, is never undone. The journal is the ledger: replaying it from the beginning through
// domain::apply rebuilds every org, which is what `canopy check` does. Records that touch several
// orgs (a charge, a transfer) name each of them, so every org's state is a function of the records.
//
// Encoding (persistence/codec.cpp) is versioned per record type; never reuse a tag.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "domain/org.hpp"
#include "domain/small_string.hpp"

namespace canopy::domain {

struct UserCreated {
  UserId user = UserId::none;
  std::string email;  // lower-cased
  std::string name;
  TokenHash token_hash{};
  Timestamp at = 0;
};

struct OrgCreated {
  OrgId org = OrgId::none;
  OrgId parent = OrgId::none;
  std::string name;
  std::optional<Plan> subscription;  // a root's plan; none for a new sub-org
  UserId owner = UserId::none;       // made admin; none for sub-orgs
  std::uint8_t depth = 0;
  Timestamp at = 0;
  Cycle cycle = 0;
  bool free_credits_recipient = false;
  Micros free_credits_micros = 0;    // granted now, for the current cycle
  PaymentId free_credits_payment = PaymentId::none;
};

struct OrgRenamed {
  OrgId org = OrgId::none;
  std::string name;
};

struct MemberSet {
  OrgId org = OrgId::none;
  UserId user = UserId::none;
  std::optional<Role> role;  // none removes the membership
};

// An event's id or type: a UUID (36 bytes) or a type of up to 36 bytes stays in place
// (small_string.hpp); 48 bytes each.
using EventText = SmallString<36>;
static_assert(sizeof(EventText) == 48);

struct ChargeEvent {
  EventText id;    // client idempotency key, unique per origin org
  EventText type;  // <module>.<action>
  std::uint64_t quantity = 0;
  Micros cost_micros = 0;
  Timestamp occurred_at = 0;
  friend bool operator==(const ChargeEvent&, const ChargeEvent&) = default;
};

// The events of a charge record: immutable and shared, so the record the payer journals holds the
// very events the gateway parsed instead of a copy of each (~120 bytes an event). Compares by
// content, like the rest of a record.
class ChargeEvents {
 public:
  ChargeEvents() = default;
  // Implicit: a vector of events is a list of events (records are built with braces).
  ChargeEvents(std::vector<ChargeEvent> events)
      : events_(std::make_shared<const std::vector<ChargeEvent>>(std::move(events))) {}
  ChargeEvents(std::initializer_list<ChargeEvent> events) : ChargeEvents(std::vector<ChargeEvent>(events)) {}
  explicit ChargeEvents(std::shared_ptr<const std::vector<ChargeEvent>> shared) : events_(std::move(shared)) {}

  std::size_t size() const { return events_ ? events_->size() : 0; }
  bool empty() const { return size() == 0; }
  const ChargeEvent& operator[](std::size_t i) const { return (*events_)[i]; }
  const ChargeEvent* begin() const { return events_ ? events_->data() : nullptr; }
  const ChargeEvent* end() const { return events_ ? events_->data() + events_->size() : nullptr; }
  friend bool operator==(const ChargeEvents& a, const ChargeEvents& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  std::shared_ptr<const std::vector<ChargeEvent>> events_;
};

// One hop of a charge: the org and the cycle in which it counted the spend when it admitted it.
struct ChainHop {
  OrgId org = OrgId::none;
  Cycle cycle = 0;
  friend bool operator==(const ChainHop&, const ChainHop&) = default;
};

// Events accepted together for one origin org. chain.front() is the origin, chain.back() the payer.
struct ChargeBatch {
  std::vector<ChainHop> chain;
  Timestamp at = 0;
  ChargeEvents events;

  OrgId origin() const { return chain.front().org; }
  OrgId payer() const { return chain.back().org; }
  Micros total_micros() const;
};

struct PauseSet {
  OrgId org = OrgId::none;
  Cycle cycle = 0;
  Timestamp at = 0;  // when (0 in records written before version 2)
};

struct CycleRolled {
  OrgId org = OrgId::none;
  Cycle cycle = 0;
  Micros free_credits_micros = 0;
  PaymentId free_credits_payment = PaymentId::none;
};

struct LimitSet {
  OrgId org = OrgId::none;
  std::optional<Micros> limit_micros;
  Timestamp at = 0;  // when (0 in records written before version 2)
};

struct ConsolidatedSet {
  OrgId org = OrgId::none;
  bool enabled = false;
};

struct SubscriptionSet {
  OrgId org = OrgId::none;
  std::optional<Plan> plan;  // none cancels
};

struct PaymentMethodSet {
  OrgId org = OrgId::none;
  std::optional<PaymentMethod> method;
};

struct AutoRechargeSet {
  OrgId org = OrgId::none;
  AutoRecharge config;
};

enum class PaymentKind : std::uint8_t { top_up = 1, auto_recharge, grant, free_credits, transfer_in, transfer_out };
enum class PaymentStatus : std::uint8_t { succeeded = 1, failed };
std::string_view name_of(PaymentKind kind);
std::string_view name_of(PaymentStatus status);

// Money into one org from outside (grant, top-up, auto-recharge). A failed charge is recorded too, for
// the history, and moves nothing.
struct PaymentRecorded {
  OrgId org = OrgId::none;
  PaymentId payment = PaymentId::none;
  PaymentKind kind = PaymentKind::grant;
  PaymentStatus status = PaymentStatus::succeeded;
  Micros amount_micros = 0;
  Timestamp at = 0;
  std::string idempotency_key;  // top-ups: the client's key
  std::string reason;           // grants: the operator's reason; failures: the provider's
};

// Credits moved from one org's balance to a self-paying descendant's.
struct TransferRecorded {
  OrgId from = OrgId::none;
  OrgId to = OrgId::none;
  PaymentId out_payment = PaymentId::none;
  PaymentId in_payment = PaymentId::none;
  Micros amount_micros = 0;
  Timestamp at = 0;
  std::string idempotency_key;
};

// Name and branding, together (PUT …/customization).
struct CustomizationSet {
  OrgId org = OrgId::none;
  std::string name;
  Customization customization;
};

struct ShowCreditsSet {
  OrgId org = OrgId::none;
  bool enabled = false;
};

struct ApiKeyCreated {
  OrgId org = OrgId::none;
  ApiKey key;
};

struct ApiKeyRevoked {
  OrgId org = OrgId::none;
  KeyId key = KeyId::none;
  TokenHash token_hash{};  // so the token index forgets it without reading the org
};

// Also drops the org's invitations that expired by `invitation.created_at`.
struct InvitationCreated {
  OrgId org = OrgId::none;
  Invitation invitation;
};

struct InvitationRevoked {
  OrgId org = OrgId::none;
  InvitationId invitation = InvitationId::none;
  TokenHash token_hash{};
};

// The invitation is used up and `user` becomes a member with `role`. When accepting created the user,
// `new_user` is that user, committed in the same record: a crash never leaves one without the other.
struct InvitationAccepted {
  OrgId org = OrgId::none;
  InvitationId invitation = InvitationId::none;
  TokenHash token_hash{};
  UserId user = UserId::none;
  Role role = Role::agent;
  Timestamp at = 0;
  std::optional<UserCreated> new_user;
};

struct AlertsSet {
  OrgId org = OrgId::none;
  AlertConfig config;
};

struct WebhookCreated {
  OrgId org = OrgId::none;
  Webhook webhook;
};

struct WebhookDeleted {
  OrgId org = OrgId::none;
  WebhookId webhook = WebhookId::none;
};

// One delivery attempt of one alert to one webhook (the dispatcher's record; it touches no org).
// `next_at` 0: the delivery is finished (delivered, given up after webhook_retry_for, or its webhook
// is gone); else when to try again.
struct WebhookAttempted {
  std::uint64_t delivery = 0;  // the outbox row
  WebhookId webhook = WebhookId::none;
  OrgId org = OrgId::none;
  std::uint64_t alert = 0;
  AlertType alert_type = AlertType::org_paused;
  std::uint32_t attempt = 0;   // 1 for the first
  bool succeeded = false;
  std::uint32_t http_status = 0;  // 0: no HTTP answer (connection failed, timeout, refused address)
  std::string error;
  Timestamp at = 0;
  Timestamp next_at = 0;
};

using Record = std::variant<UserCreated, OrgCreated, OrgRenamed, MemberSet, ChargeBatch, PauseSet, CycleRolled,
                            LimitSet, ConsolidatedSet, SubscriptionSet, PaymentMethodSet, AutoRechargeSet,
                            PaymentRecorded, TransferRecorded, CustomizationSet, ShowCreditsSet, ApiKeyCreated,
                            ApiKeyRevoked, InvitationCreated, InvitationRevoked, InvitationAccepted, AlertsSet,
                            WebhookCreated, WebhookDeleted, WebhookAttempted>;

// Every org whose state the record changes (empty for user records).
std::vector<OrgId> orgs_touched(const Record& record);

}  // namespace canopy::domain
