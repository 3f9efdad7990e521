#include "net/http.hpp"
#include "net/json_out.hpp"

namespace canopy::net {

using domain::Errc;

unsigned http_status(Errc code) {
  switch (code) {
    case Errc::invalid_request: return 400;
    case Errc::unauthenticated: return 401;
    case Errc::insufficient_credits: return 402;
    case Errc::payment_declined: return 402;
    case Errc::forbidden: return 403;
    case Errc::plan_required: return 403;
    case Errc::module_disabled: return 403;
    case Errc::not_found: return 404;
    case Errc::method_not_allowed: return 405;
    case Errc::email_taken: return 409;
    case Errc::detach_not_ready: return 409;
    case Errc::last_admin: return 409;
    case Errc::spending_limit_required: return 409;
    case Errc::invitation_expired: return 410;
    case Errc::invitation_used: return 410;
    case Errc::spending_limit_reached: return 409;
    case Errc::transfer_insufficient_credits: return 409;
    case Errc::payment_method_required: return 409;
    case Errc::idempotency_key_reused: return 409;
    case Errc::conflict: return 409;
    case Errc::payload_too_large: return 413;
    case Errc::unsupported_media_type: return 415;
    case Errc::depth_exceeded: return 422;
    case Errc::unavailable: return 503;
    case Errc::internal: return 500;
  }
  return 500;
}

HttpResponse error_response(const domain::Error& error) {
  JsonWriter w;
  w.begin_object().key("error").begin_object();
  w.key("code").string(domain::errc_name(error.code));
  w.key("message").string(error.message);
  w.key("details").begin_object();
  for (const auto& [k, v] : error.details) {
    w.key(k);
    if (const auto* text = std::get_if<std::string>(&v)) {
      w.string(*text);
    } else if (const auto* number = std::get_if<std::int64_t>(&v)) {
      w.integer(*number);
    } else {
      w.begin_array();
      for (const auto& item : std::get<std::vector<std::string>>(v)) w.string(item);
      w.end_array();
    }
  }
  w.end_object().end_object().end_object();
  HttpResponse r{http_status(error.code), w.take(), "application/json", {}};
  if (error.code == Errc::unauthenticated) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

HttpResponse json_response(unsigned status, std::string body) {
  return HttpResponse{status, std::move(body), "application/json", {}};
}

domain::Error without_money(domain::Error error) {
  std::erase_if(error.details, [](const auto& entry) { return entry.first.ends_with("_micros"); });
  return error;
}

HttpResponse no_content() { return HttpResponse{204, {}, {}, {}}; }

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}
}  // namespace

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (decode(pair.substr(0, eq)) == name) return decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace canopy::net
