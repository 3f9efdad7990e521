// An HTTP/1.1 response parser that keeps nothing but the status code and the body.
//
// Beast's basic_parser does the parsing (Content-Length and chunked bodies, header and body limits);
// this class only collects the status and appends the body to a string its owner reuses for every
// response, so that parsing an answer allocates nothing once that string has grown. The body is
// left with body_padding_bytes of spare capacity past its end, which simdjson needs to read it in place.
//
// One parser per response: construct (or emplace) a new one for each message, as Beast requires.
// Owned by the Connection that reads the responses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/beast/http/basic_parser.hpp>

namespace canopy::loadgen {

inline constexpr std::size_t body_padding_bytes = 64;          // >= SIMDJSON_PADDING (checked where it is used)
inline constexpr std::uint32_t response_header_bytes_max = 16 * 1024;
inline constexpr std::uint64_t response_body_bytes_max = 64 * 1024 * 1024;  // 10,000 batch results fit easily

class ResponseParser final : public boost::beast::http::basic_parser<false> {
 public:
  // REQUIRES: body outlives the parser.
  explicit ResponseParser(std::string& body);

  int status() const { return status_; }

 private:
  using error_code = boost::beast::error_code;
  using string_view = boost::beast::string_view;

  void on_request_impl(boost::beast::http::verb, string_view, string_view, int, error_code&) override {}
  void on_response_impl(int code, string_view, int, error_code&) override { status_ = code; }
  void on_field_impl(boost::beast::http::field, string_view, string_view, error_code&) override {}
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length, error_code&) override;
  std::size_t on_body_impl(string_view body, error_code&) override;
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code&) override;
  void on_finish_impl(error_code&) override;

  std::string& body_;
  int status_ = 0;
};

}  // namespace canopy::loadgen
