#include "domain/validation.hpp"

#include <algorithm>

#include "config/limits.hpp"
#include "domain/catalog.hpp"
#include "domain/charge.hpp"

namespace canopy::domain {
namespace {

bool is_printable_ascii(char c) { return c > 0x20 && c < 0x7f; }

// Structural UTF-8 check (lead byte, continuation bytes, no truncated sequence).
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra = 0;
    if (c < 0x80) extra = 0;
    else if ((c >> 5) == 0x6) extra = 1;
    else if ((c >> 4) == 0xe) extra = 2;
    else if ((c >> 3) == 0x1e) extra = 3;
    else return false;
    if (i + extra >= s.size() && extra > 0) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += extra + 1;
  }
  return true;
}

}  // namespace

std::optional<std::string> check_name(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > limits::name_bytes_max) return "must be at most " + std::to_string(limits::name_bytes_max) + " bytes";
  if (!valid_utf8(name)) return "must be valid UTF-8";
  if (std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    return "must not contain control characters";
  }
  if (std::all_of(name.begin(), name.end(), [](char c) { return c == ' '; })) return "must not be blank";
  return std::nullopt;
}

std::optional<std::string> check_email(std::string_view email) {
  if (email.empty() || email.size() > limits::email_bytes_max) return "must be an email address of at most 254 bytes";
  const auto at = email.find('@');
  if (at == std::string_view::npos || at == 0 || email.find('@', at + 1) != std::string_view::npos) {
    return "must be an email address like name@example.com";
  }
  const auto domain = email.substr(at + 1);
  if (domain.size() < 3 || domain.find('.') == std::string_view::npos || domain.front() == '.' ||
      domain.back() == '.' || domain.find("..") != std::string_view::npos) {
    return "must be an email address like name@example.com";
  }
  if (!std::all_of(email.begin(), email.end(), is_printable_ascii)) {
    return "must not contain spaces or control characters";
  }
  return std::nullopt;
}

std::string normalize_email(std::string_view email) {
  std::string out(email);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  return out;
}

std::optional<std::string> check_event_id(std::string_view id) {
  if (id.empty() || id.size() > limits::event_id_bytes_max) {
    return "must be 1 to " + std::to_string(limits::event_id_bytes_max) + " characters";
  }
  if (!std::all_of(id.begin(), id.end(), is_printable_ascii)) return "must be printable ASCII without spaces";
  return std::nullopt;
}

std::optional<std::string> check_event_quantity(std::int64_t quantity) {
  if (quantity < 0 || static_cast<std::uint64_t>(quantity) > limits::quantity_max) {
    return "must be from 0 to " + std::to_string(limits::quantity_max);
  }
  return std::nullopt;
}

std::optional<std::string> check_event_cost(std::int64_t cost_micros) {
  if (cost_micros < 0 || cost_micros > limits::amount_micros_max) {
    return "must be from 0 to " + std::to_string(limits::amount_micros_max);
  }
  return std::nullopt;
}

std::optional<std::string> check_event_type(std::string_view type) {
  if (type.size() > limits::event_type_bytes_max) return "is too long";
  const auto dot = type.find('.');
  if (dot == std::string_view::npos || !module_of_event_type(type)) {
    return "must be <module>.<action> with a known module (e.g. assistants.reply)";
  }
  const auto action = type.substr(dot + 1);
  if (action.empty() || !std::all_of(action.begin(), action.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      })) {
    return "action must be lower-case letters, digits or _";
  }
  return std::nullopt;
}

std::optional<std::string> check_idempotency_key(std::string_view key) {
  if (key.empty() || key.size() > limits::idempotency_key_bytes_max) return "must be 1 to " + std::to_string(limits::idempotency_key_bytes_max) + " characters";
  if (!std::all_of(key.begin(), key.end(), is_printable_ascii)) return "must be printable ASCII without spaces";
  return std::nullopt;
}

std::optional<std::string> check_http_url(std::string_view url) {
  if (url.size() > limits::url_bytes_max) return "must be at most " + std::to_string(limits::url_bytes_max) + " bytes";
  std::string_view rest;
  if (url.starts_with("https://")) rest = url.substr(8);
  else if (url.starts_with("http://")) rest = url.substr(7);
  else return "must be an http:// or https:// URL";
  const auto host = rest.substr(0, rest.find_first_of("/?#"));
  if (host.empty() || host.front() == ':' || host.front() == '@') return "must be an http(s) URL with a host";
  if (!std::all_of(url.begin(), url.end(), is_printable_ascii)) return "must not contain spaces or control characters";
  if (url.find_first_of("<>\"\\") != std::string_view::npos) return "must not contain <, >, \" or \\";
  return std::nullopt;
}

std::optional<std::string> check_address(std::string_view address) {
  if (address.size() > limits::address_bytes_max) {
    return "must be at most " + std::to_string(limits::address_bytes_max) + " bytes";
  }
  if (!valid_utf8(address)) return "must be valid UTF-8";
  if (std::any_of(address.begin(), address.end(),
                  [](char c) { return (static_cast<unsigned char>(c) < 0x20 && c != '\n') || c == 0x7f; })) {
    return "must not contain control characters other than line breaks";
  }
  return std::nullopt;
}

}  // namespace canopy::domain
