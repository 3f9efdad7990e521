// Compact, versioned binary encoding of everything Canopy stores.
//
// Each value starts with a type tag byte and a version byte; fields follow as LEB128 varints
// (zig-zag for signed), length-prefixed strings and fixed arrays. Decoding checks every bound and
// returns nullopt on anything malformed; the caller treats that as corruption. Adding a field means a
// new version number with the old one still decodable.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "domain/records.hpp"
#include "domain/usage.hpp"
#include "persistence/keys.hpp"

namespace canopy::persistence {

struct UserRow {
  domain::UserId id = domain::UserId::none;
  std::string email;
  std::string name;
  domain::Timestamp created_at = 0;
  friend bool operator==(const UserRow&, const UserRow&) = default;
};

struct PaymentRow {
  domain::PaymentId id = domain::PaymentId::none;
  domain::PaymentKind kind = domain::PaymentKind::grant;
  domain::PaymentStatus status = domain::PaymentStatus::succeeded;
  domain::Micros amount_micros = 0;
  domain::Timestamp at = 0;
  domain::OrgId counterparty = domain::OrgId::none;  // transfers: the other org
  std::string reason;
  friend bool operator==(const PaymentRow&, const PaymentRow&) = default;
};

// What a stored token hash stands for (the tokens table, keys.hpp). `owner` is the user (user tokens)
// or the org (API keys, invitations); `item` the key or invitation id.
struct TokenRow {
  TokenKind kind = TokenKind::user;
  std::uint64_t owner = 0;
  std::uint64_t item = 0;
  bool used = false;  // invitations: accepted
  friend bool operator==(const TokenRow&, const TokenRow&) = default;
};

std::string encode(const domain::Record& record);
std::optional<domain::Record> decode_record(std::string_view bytes);

// An org's snapshot as of journal record `as_of`: it holds every record up to that seq which touches
// the org, and none after. Recovery replays onto it only records after `as_of` (materializer.hpp).
std::string encode(const domain::OrgState& org, std::uint64_t as_of = 0);
std::optional<domain::OrgState> decode_org(std::string_view bytes, std::uint64_t* as_of = nullptr);

std::string encode(const UserRow& user);
std::optional<UserRow> decode_user(std::string_view bytes);

// A webhook delivery waiting in the outbox (keys.hpp): the alert to send, where, and when next.
struct OutboxRow {
  domain::WebhookId webhook = domain::WebhookId::none;
  domain::Alert alert;
  std::uint32_t attempts = 0;  // made so far
  domain::Timestamp next_at = 0;
  std::uint64_t order = 0;     // journal order of the alert (seq * 256 + its index), for fair delivery order
  friend bool operator==(const OutboxRow&, const OutboxRow&) = default;
};

// One attempt, as GET …/webhooks/{wid}/deliveries lists it.
struct DeliveryRow {
  std::uint64_t alert = 0;
  domain::AlertType alert_type = domain::AlertType::org_paused;
  std::uint32_t attempt = 0;
  bool succeeded = false;
  std::uint32_t http_status = 0;
  std::string error;
  domain::Timestamp at = 0;
  domain::Timestamp next_at = 0;
  friend bool operator==(const DeliveryRow&, const DeliveryRow&) = default;
};

std::string encode(const OutboxRow& row);
std::optional<OutboxRow> decode_outbox_row(std::string_view bytes);
std::string encode(const DeliveryRow& row);
std::optional<DeliveryRow> decode_delivery_row(std::string_view bytes);

std::string encode(const domain::Bucket& bucket);
std::optional<domain::Bucket> decode_bucket(std::string_view bytes);

std::string encode(const TokenRow& token);
std::optional<TokenRow> decode_token_row(std::string_view bytes);

std::string encode(const PaymentRow& payment);
std::optional<PaymentRow> decode_payment(std::string_view bytes);

// An accepted event id (Table::event_ids). Fixed big-endian fields, no tag: the hot path reads one per
// event. `at` (when the charge was accepted, which decides when the id is forgotten) is absent from
// rows written before it was added (16 bytes); the purge then reads it from the journal record.
struct EventIdRow {
  std::uint64_t seq = 0;
  domain::OrgId payer = domain::OrgId::none;
  std::optional<domain::Timestamp> at;
};
inline constexpr std::size_t event_id_row_bytes = 24;  // as encoded now (rows without `at`: 16)
std::string encode(const EventIdRow& row);
std::optional<EventIdRow> decode_event_id_row(std::string_view bytes);

}  // namespace canopy::persistence
