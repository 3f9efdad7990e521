// Alerts: what an org's owners are told when its money crosses a line, and where it is sent.
//
// An alert fires once per crossing, not once per event: it is derived from one journal record by
// comparing the org's facts just before and just after that record (alerts_between). The writer
// derives alerts as it folds each record (persistence/materializer), in the same commit, so an alert
// exists exactly when the change that caused it does, and replaying the journal derives the same
// alerts with the same ids.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/errors.hpp"
#include "domain/ids.hpp"
#include "domain/money.hpp"
#include "domain/time.hpp"

namespace canopy::domain {

struct OrgState;

enum class AlertType : std::uint8_t {
  spend_threshold_crossed = 0,
  balance_low = 1,
  org_paused = 2,
  org_resumed = 3,
  auto_recharge_succeeded = 4,
  auto_recharge_failed = 5,
  org_detached = 6,
};
inline constexpr std::size_t alert_type_count = 7;
inline constexpr std::array<std::string_view, alert_type_count> alert_type_names = {
    "spend.threshold_crossed", "balance.low", "org.paused", "org.resumed",
    "auto_recharge.succeeded", "auto_recharge.failed", "org.detached"};
inline std::string_view name_of(AlertType t) { return alert_type_names[static_cast<std::size_t>(t)]; }
std::optional<AlertType> parse_alert_type(std::string_view name);
using AlertTypeSet = std::uint8_t;  // bit i = AlertType i
constexpr AlertTypeSet bit(AlertType t) { return static_cast<AlertTypeSet>(1u << static_cast<unsigned>(t)); }

// PUT …/alerts: spend thresholds in percent of the monthly limit (sorted, unique, 1..limits max) and
// a low-balance line. Unset: no threshold or low-balance alerts (paused/resumed/recharge ones always fire).
struct AlertConfig {
  std::vector<std::uint16_t> spend_percent_thresholds;
  std::optional<Micros> low_balance_micros;
  friend bool operator==(const AlertConfig&, const AlertConfig&) = default;
};

enum class WebhookId : std::uint64_t { none = 0 };
constexpr std::uint64_t raw(WebhookId id) { return static_cast<std::uint64_t>(id); }
inline constexpr std::string_view webhook_prefix = "wh_";
inline constexpr std::string_view alert_prefix = "evt_";
inline std::string to_string(WebhookId id) { return format_id(webhook_prefix, raw(id)); }
std::optional<WebhookId> parse_webhook_id(std::string_view text);

struct Webhook {
  WebhookId id = WebhookId::none;
  std::string url;
  AlertTypeSet events = 0;
  std::string secret;  // whsec_…: kept in clear, it signs every delivery
  Timestamp created_at = 0;
  friend bool operator==(const Webhook&, const Webhook&) = default;
};

// One alert. `id` is derived from the journal record and the alert's place in it, so replaying the
// journal gives the same id (receivers dedupe by it).
struct Alert {
  std::uint64_t id = 0;
  AlertType type = AlertType::org_paused;
  OrgId org = OrgId::none;
  Timestamp at = 0;
  // The data, by type (zero/none where a type has no such field):
  std::uint16_t threshold_percent = 0;        // spend.threshold_crossed
  Micros cycle_spend_micros = 0;              // spend.threshold_crossed, org.paused
  std::optional<Micros> limit_micros;         // spend.threshold_crossed, org.paused
  Micros balance_micros = 0;                  // balance.low
  Micros low_balance_micros = 0;              // balance.low
  Micros amount_micros = 0;                   // auto_recharge.*
  PaymentId payment = PaymentId::none;        // auto_recharge.*
  std::string reason;                         // auto_recharge.failed
  friend bool operator==(const Alert&, const Alert&) = default;
};
inline std::string alert_id_text(std::uint64_t id) { return format_id(alert_prefix, id); }
// Mixes the record's journal seq, the org and the alert's index into a nonzero id.
std::uint64_t alert_id(std::uint64_t seq, OrgId org, std::uint32_t index);
// The outbox row of one alert for one webhook: the same pair always gives the same id.
std::uint64_t delivery_id(std::uint64_t alert, WebhookId webhook);

// What alerts compare, before and after a record.
struct AlertFacts {
  Cycle cycle = 0;
  Micros spend_micros = 0;
  std::optional<Micros> limit_micros;
  Micros balance_micros = 0;
  bool paused = false;
};
AlertFacts facts_of(const OrgState& org);

// The alerts `record` causes on `org` (whose facts went from `before` to `after`). `payment`: the
// record when it is an auto-recharge payment of this org (kind auto_recharge), else null.
struct PaymentRecorded;
std::vector<Alert> alerts_between(const AlertFacts& before, const AlertFacts& after, const AlertConfig& config,
                                  OrgId org, Timestamp at, const PaymentRecorded* recharge);

// Validates a config from a request; nullopt when valid, else an invalid_request naming the field.
std::optional<Error> check_alert_config(const AlertConfig& config);


// `Canopy-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the secret>` (Stripe's
// scheme): receivers recompute it and reject stale `t` to stop replays.
std::string webhook_signature(std::string_view secret, Timestamp t, std::string_view body);

// Whether an IP address (4 or 16 bytes, network order) is one a webhook must not target unless
// private targets are allowed: loopback, private (RFC 1918, fc00::/7), link-local, site-local, CGNAT,
// protocol assignments (192.0.0/24), benchmarking (198.18/15), unspecified, multicast, broadcast, the
// whole of ::/96, local-use NAT64, and those IPv4 addresses inside IPv4-mapped, NAT64 (64:ff9b::/96)
// and 6to4 (2002::/16) addresses.
bool is_private_address(const std::uint8_t* bytes, std::size_t size);

// Delay before attempt `attempt + 1` after `attempt` failures (1-based): webhook_retry_first doubled
// each time, at most webhook_retry_max.
std::int64_t webhook_backoff_seconds(std::uint32_t attempt);

}  // namespace canopy::domain
