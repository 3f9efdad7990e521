#include "net/response_head.hpp"

#include <ostream>  // before Beast: its string_view needs it

#include <boost/beast/http/status.hpp>

#include <charconv>
#include <string_view>

#include "domain/org.hpp"  // CANOPY_ASSERT

namespace canopy::net {
namespace {

void append_number(std::string& out, std::size_t n) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, end);
}

bool one_line(std::string_view s) { return s.find_first_of("\r\n") == std::string_view::npos; }

void append_field(std::string& out, std::string_view name, std::string_view value) {
  CANOPY_ASSERT(one_line(name) && one_line(value));  // a line break would end the head early
  out.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

void append_response_head(std::string& out, const HttpResponse& response, Connection connection) {
  out.append("HTTP/1.1 ");
  append_number(out, response.status);
  out.push_back(' ');
  out.append(boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(response.status)));
  out.append("\r\nServer: canopy\r\n");
  if (!response.content_type.empty()) append_field(out, "Content-Type", response.content_type);
  for (const auto& [name, value] : response.headers) append_field(out, name, value);
  if (connection == Connection::close) out.append("Connection: close\r\n");
  if (connection == Connection::keep_alive_announced) out.append("Connection: keep-alive\r\n");
  // A 1xx, 204 or 304 has no body and must not send a length (RFC 9110 §8.6).
  const bool bodiless = response.status < 200 || response.status == 204 || response.status == 304;
  if (bodiless) {
    CANOPY_ASSERT(response.body.empty());
  } else {
    out.append("Content-Length: ");
    append_number(out, response.body.size());
    out.append("\r\n");
  }
  out.append("\r\n");
}

}  // namespace canopy::net
