// Validation of what clients send, as values: nullopt means valid, else the reason.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace canopy::domain {

// 1..name_bytes_max bytes of UTF-8 without control characters, not only spaces.
std::optional<std::string> check_name(std::string_view name);
// A plausible address: local@domain.tld, no spaces or control characters, at most 254 bytes.
std::optional<std::string> check_email(std::string_view email);
std::string normalize_email(std::string_view email);
// 1..event_id_bytes_max printable ASCII characters.
std::optional<std::string> check_event_id(std::string_view id);
// `<module>.<action>`: a known module, an action of [a-z0-9_] up to the length limit.
std::optional<std::string> check_event_type(std::string_view type);
// 0..quantity_max units.
std::optional<std::string> check_event_quantity(std::int64_t quantity);
// 0..amount_micros_max micro-dollars.
std::optional<std::string> check_event_cost(std::int64_t cost_micros);
std::optional<std::string> check_idempotency_key(std::string_view key);
// An absolute http:// or https:// URL with a host, printable ASCII, at most url_bytes_max bytes.
std::optional<std::string> check_http_url(std::string_view url);
// A postal address: UTF-8, at most address_bytes_max bytes, no control characters but line breaks.
std::optional<std::string> check_address(std::string_view address);

}  // namespace canopy::domain
