// What a test that speaks HTTP through Beast itself (raw bytes, a second request on one connection,
// the CLI's server) read, as the harness's HttpResult. Only those tests include Beast; the harness
// keeps it out of the others.
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cctype>
#include <string>

#include "tests/e2e/harness.hpp"

namespace canopy::test {

// The response `res` that a read ending with `ec` filled: its status, body and headers (names in
// lower case), or "no response: …" in the body when the read failed.
inline HttpResult beast_result(const boost::beast::error_code& ec,
                               const boost::beast::http::response<boost::beast::http::string_body>& res) {
  HttpResult out;
  if (ec) {
    out.body = "no response: " + ec.message();
    return out;
  }
  out.status = res.result_int();
  out.body = res.body();
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(field.value());
  }
  return out;
}

}  // namespace canopy::test
