// Domain failures as values.
//
// Every refusal Canopy can give is one Errc. net/error_map.cpp maps each to its HTTP status in one
// place; the wire code is errc_name(). An Error carries the human message and optional details
// (string pairs, rendered as a JSON object).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace canopy::domain {

enum class Errc : std::uint8_t {
  invalid_request,
  unauthenticated,
  forbidden,
  not_found,
  method_not_allowed,
  payload_too_large,
  unsupported_media_type,
  email_taken,
  plan_required,
  depth_exceeded,
  detach_not_ready,
  last_admin,
  invitation_expired,
  invitation_used,
  spending_limit_required,
  module_disabled,
  spending_limit_reached,
  insufficient_credits,            // a charge the payer cannot cover: 402
  transfer_insufficient_credits,   // a transfer the balance cannot cover: 409, same wire code
  payment_method_required,
  payment_declined,
  idempotency_key_reused,
  conflict,
  unavailable,
  internal,
};

std::string_view errc_name(Errc code);

// A value in an error's details: text, a number (e.g. a batch index) or a list (e.g. unmet conditions).
using DetailValue = std::variant<std::string, std::int64_t, std::vector<std::string>>;
using Details = std::vector<std::pair<std::string, DetailValue>>;

struct Error {
  Errc code = Errc::internal;
  std::string message;
  Details details;

  Error() = default;
  Error(Errc c, std::string m) : code(c), message(std::move(m)) {}
  Error(Errc c, std::string m, Details d) : code(c), message(std::move(m)), details(std::move(d)) {}
};

inline Error invalid(std::string message) { return Error{Errc::invalid_request, std::move(message)}; }
inline Error invalid_field(std::string field, std::string message) {
  return Error{Errc::invalid_request, std::move(message), {{"field", std::move(field)}}};
}
inline Error not_found(std::string what) { return Error{Errc::not_found, std::move(what) + " not found"}; }

inline std::string_view errc_name(Errc code) {
  switch (code) {
    case Errc::invalid_request: return "invalid_request";
    case Errc::unauthenticated: return "unauthenticated";
    case Errc::forbidden: return "forbidden";
    case Errc::not_found: return "not_found";
    case Errc::method_not_allowed: return "method_not_allowed";
    case Errc::payload_too_large: return "payload_too_large";
    case Errc::unsupported_media_type: return "unsupported_media_type";
    case Errc::email_taken: return "email_taken";
    case Errc::plan_required: return "plan_required";
    case Errc::depth_exceeded: return "depth_exceeded";
    case Errc::detach_not_ready: return "detach_not_ready";
    case Errc::last_admin: return "last_admin";
    case Errc::invitation_expired: return "invitation_expired";
    case Errc::invitation_used: return "invitation_used";
    case Errc::spending_limit_required: return "spending_limit_required";
    case Errc::module_disabled: return "module_disabled";
    case Errc::spending_limit_reached: return "spending_limit_reached";
    case Errc::insufficient_credits: return "insufficient_credits";
    case Errc::transfer_insufficient_credits: return "insufficient_credits";
    case Errc::payment_method_required: return "payment_method_required";
    case Errc::payment_declined: return "payment_declined";
    case Errc::idempotency_key_reused: return "idempotency_key_reused";
    case Errc::conflict: return "conflict";
    case Errc::unavailable: return "unavailable";
    case Errc::internal: return "internal";
  }
  return "internal";
}

}  // namespace canopy::domain
