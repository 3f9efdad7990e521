#include "domain/alerts.hpp"

#include <openssl/hmac.h>

#include <algorithm>

#include "config/limits.hpp"
#include "domain/records.hpp"

namespace canopy::domain {
namespace {

// Spend has reached `percent` of the limit: spend*100 >= percent*limit, in integers that cannot
// overflow (limits and percents are bounded in limits.hpp, so percent*limit stays below 2^53).
bool reached(const AlertFacts& f, std::uint16_t percent) {
  if (!f.limit_micros) return false;
  const Micros line = (static_cast<Micros>(percent) * *f.limit_micros + 99) / 100;  // ceil(percent% of limit)
  return f.spend_micros >= line;
}

}  // namespace

std::optional<AlertType> parse_alert_type(std::string_view name) {
  for (std::size_t i = 0; i < alert_type_names.size(); ++i) {
    if (alert_type_names[i] == name) return static_cast<AlertType>(i);
  }
  return std::nullopt;
}

std::optional<WebhookId> parse_webhook_id(std::string_view text) {
  if (auto v = parse_id(webhook_prefix, text)) return WebhookId{*v};
  return std::nullopt;
}

std::uint64_t alert_id(std::uint64_t seq, OrgId org, std::uint32_t index) {
  // splitmix64 over the three inputs: deterministic, well spread, and never zero.
  std::uint64_t x = seq * 0x9e3779b97f4a7c15ULL ^ raw(org) ^ (static_cast<std::uint64_t>(index) << 56);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x == 0 ? 1 : x;
}

std::uint64_t delivery_id(std::uint64_t alert, WebhookId webhook) { return alert_id(alert, OrgId{raw(webhook)}, 0); }

AlertFacts facts_of(const OrgState& org) {
  return AlertFacts{org.cycle, org.cycle_spend_micros, org.monthly_limit_micros, org.balance_micros, org.paused()};
}

std::vector<Alert> alerts_between(const AlertFacts& before, const AlertFacts& after, const AlertConfig& config,
                                  OrgId org, Timestamp at, const PaymentRecorded* recharge) {
  std::vector<Alert> out;
  const auto make = [&](AlertType type) -> Alert& {
    Alert& a = out.emplace_back();
    a.type = type;
    a.org = org;
    a.at = at;
    return a;
  };
  // A new cycle starts from zero spend: nothing reached before it counts as reached now.
  const bool same_cycle = before.cycle == after.cycle;
  for (const auto percent : config.spend_percent_thresholds) {
    if ((!same_cycle || !reached(before, percent)) && reached(after, percent)) {
      Alert& a = make(AlertType::spend_threshold_crossed);
      a.threshold_percent = percent;
      a.cycle_spend_micros = after.spend_micros;
      a.limit_micros = after.limit_micros;
    }
  }
  if (config.low_balance_micros && before.balance_micros >= *config.low_balance_micros &&
      after.balance_micros < *config.low_balance_micros) {
    Alert& a = make(AlertType::balance_low);
    a.balance_micros = after.balance_micros;
    a.low_balance_micros = *config.low_balance_micros;
  }
  if (!before.paused && after.paused) {
    Alert& a = make(AlertType::org_paused);
    a.cycle_spend_micros = after.spend_micros;
    a.limit_micros = after.limit_micros;
  } else if (before.paused && !after.paused) {
    make(AlertType::org_resumed);
  }
  if (recharge) {
    Alert& a = make(recharge->status == PaymentStatus::succeeded ? AlertType::auto_recharge_succeeded
                                                                  : AlertType::auto_recharge_failed);
    a.amount_micros = recharge->amount_micros;
    a.payment = recharge->payment;
    a.reason = recharge->reason;
  }
  return out;
}

std::optional<Error> check_alert_config(const AlertConfig& config) {
  if (config.spend_percent_thresholds.size() > limits::alert_thresholds_max) {
    return invalid_field("spend_percent_thresholds", "spend_percent_thresholds holds at most " + std::to_string(limits::alert_thresholds_max) + " values");
  }
  for (std::size_t i = 0; i < config.spend_percent_thresholds.size(); ++i) {
    const auto p = config.spend_percent_thresholds[i];
    if (p < 1 || p > limits::alert_threshold_percent_max) {
      return invalid_field("spend_percent_thresholds", "spend_percent_thresholds values must be from 1 to " + std::to_string(limits::alert_threshold_percent_max));
    }
    if (i > 0 && p <= config.spend_percent_thresholds[i - 1]) {
      return invalid_field("spend_percent_thresholds", "spend_percent_thresholds must be increasing, without repeats");
    }
  }
  if (config.low_balance_micros && (*config.low_balance_micros < 0 || *config.low_balance_micros > limits::amount_micros_max)) {
    return invalid_field("low_balance_micros", "low_balance_micros must be from 0 to " + std::to_string(limits::amount_micros_max));
  }
  return std::nullopt;
}


std::string webhook_signature(std::string_view secret, Timestamp t, std::string_view body) {
  const std::string payload = std::to_string(t) + "." + std::string(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(payload.data()),
       payload.size(), mac, &length);
  return "t=" + std::to_string(t) + ",v1=" + to_hex(mac, length);
}

bool is_private_address(const std::uint8_t* b, std::size_t size) {
  if (size == 16) {
    const auto zero = [](std::uint8_t x) { return x == 0; };
    // IPv6 forms that carry an IPv4 address a host or gateway may reach: judged by that address.
    static constexpr std::uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static constexpr std::uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};  // 64:ff9b::/96
    if (std::equal(b, b + 12, v4_mapped) || std::equal(b, b + 12, nat64)) return is_private_address(b + 12, 4);
    if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1) return true;  // 64:ff9b:1::/48 local NAT64
    if (b[0] == 0x20 && b[1] == 0x02) return is_private_address(b + 2, 4);  // 2002::/16 6to4
    if (std::all_of(b, b + 12, zero)) return true;  // ::/96: unspecified, loopback, deprecated IPv4-compatible
    if ((b[0] & 0xfe) == 0xfc) return true;                 // fc00::/7 unique local
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return true;  // fe80::/10 link-local
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return true;  // fec0::/10 site-local (deprecated)
    if (b[0] == 0xff) return true;                           // multicast
    return false;
  }
  if (size != 4) return true;  // not an address we understand: refuse
  if (b[0] == 0 || b[0] == 10 || b[0] == 127) return true;            // this network, private, loopback
  if (b[0] == 169 && b[1] == 254) return true;                        // link-local
  if (b[0] == 172 && (b[1] & 0xf0) == 16) return true;                // 172.16/12
  if (b[0] == 192 && b[1] == 168) return true;                        // 192.168/16
  if (b[0] == 100 && (b[1] & 0xc0) == 64) return true;                // 100.64/10 carrier-grade NAT
  if (b[0] == 192 && b[1] == 0 && b[2] == 0) return true;             // 192.0.0/24 protocol assignments
  if (b[0] == 198 && (b[1] & 0xfe) == 18) return true;                // 198.18/15 benchmarking
  if (b[0] >= 224) return true;                                       // multicast, reserved, broadcast
  return false;
}

std::int64_t webhook_backoff_seconds(std::uint32_t attempt) {
  std::int64_t delay = limits::webhook_retry_first.count();
  for (std::uint32_t i = 1; i < attempt && delay < limits::webhook_retry_max.count(); ++i) delay *= 2;
  return std::min<std::int64_t>(delay, limits::webhook_retry_max.count());
}

}  // namespace canopy::domain
