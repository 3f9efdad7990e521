#include "bench/loadgen_http.hpp"

namespace canopy::loadgen {

ResponseParser::ResponseParser(std::string& body) : body_(body) {
  body_.clear();
  header_limit(response_header_bytes_max);
  body_limit(response_body_bytes_max);
  eager(true);  // parse as much body as the buffer holds in one put()
}

void ResponseParser::on_body_init_impl(const boost::optional<std::uint64_t>& content_length, error_code&) {
  if (content_length) body_.reserve(static_cast<std::size_t>(*content_length) + body_padding_bytes);
}

std::size_t ResponseParser::on_body_impl(string_view body, error_code&) {
  body_.append(body.data(), body.size());
  return body.size();
}

std::size_t ResponseParser::on_chunk_body_impl(std::uint64_t, string_view body, error_code&) {
  body_.append(body.data(), body.size());
  return body.size();
}

void ResponseParser::on_finish_impl(error_code&) {
  if (body_.capacity() < body_.size() + body_padding_bytes) body_.reserve(body_.size() + body_padding_bytes);
}

}  // namespace canopy::loadgen
