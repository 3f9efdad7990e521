// Goal: every response head Canopy writes is one a standard HTTP/1.1 parser (Beast's) reads back as
// sent: status and reason, the content type and the answer's own fields, whether the connection
// stays open, and a length that frames the body exactly (none at all for a 204).
#include <gtest/gtest.h>

#include <boost/beast/http.hpp>

#include <string>

#include "net/response_head.hpp"

namespace http = boost::beast::http;
using canopy::net::append_response_head;
using canopy::net::Connection;
using canopy::net::HttpResponse;

namespace {

HttpResponse json(unsigned status, std::string body) { return HttpResponse{status, std::move(body), "application/json", {}}; }

// The first response on `wire`, as Beast's parser reads it; `used` is how many bytes it took.
http::response<http::string_body> parse_first(const std::string& wire, std::size_t& used) {
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  boost::beast::error_code ec;
  used = parser.put(boost::asio::buffer(wire), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(parser.is_done());
  return parser.release();
}

// Head and body as they go on the wire, read back by Beast; the parser must consume every byte.
http::response<http::string_body> read_back(const HttpResponse& response, Connection connection) {
  std::string wire;
  append_response_head(wire, response, connection);
  wire += response.body;
  std::size_t used = 0;
  auto parsed = parse_first(wire, used);
  EXPECT_EQ(used, wire.size());
  return parsed;
}

}  // namespace

TEST(ResponseHead, AnAnswerKeepsItsStatusTypeAndBodyAndTheConnectionStaysOpen) {
  const std::string body = R"({"id":"e1","status":"accepted"})";
  const auto r = read_back(json(200, body), Connection::keep_alive);
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r.reason(), "OK");
  EXPECT_EQ(r.version(), 11u);
  EXPECT_EQ(r[http::field::server], "canopy");
  EXPECT_EQ(r[http::field::content_type], "application/json");
  EXPECT_EQ(r[http::field::content_length], std::to_string(body.size()));
  EXPECT_EQ(r.body(), body);
  EXPECT_TRUE(r.keep_alive());
}

TEST(ResponseHead, AnErrorCarriesItsOwnFieldsAndCanCloseTheConnection) {
  HttpResponse answer = json(401, R"({"error":{}})");
  answer.headers.emplace_back("WWW-Authenticate", "Bearer");
  answer.headers.emplace_back("Allow", "GET, POST");
  const auto r = read_back(answer, Connection::close);
  EXPECT_EQ(r.result_int(), 401u);
  EXPECT_EQ(r.reason(), "Unauthorized");
  EXPECT_EQ(r[http::field::www_authenticate], "Bearer");
  EXPECT_EQ(r[http::field::allow], "GET, POST");
  EXPECT_EQ(r.body(), R"({"error":{}})");
  EXPECT_FALSE(r.keep_alive());
}

TEST(ResponseHead, AnHttp10ClientThatAskedToKeepTheConnectionIsToldItIsKept) {
  std::string wire;
  append_response_head(wire, json(200, "{}"), Connection::keep_alive_announced);
  EXPECT_NE(wire.find("\r\nConnection: keep-alive\r\n"), std::string::npos);
  wire.clear();
  append_response_head(wire, json(200, "{}"), Connection::keep_alive);
  EXPECT_EQ(wire.find("Connection"), std::string::npos);  // HTTP/1.1 keeps it without saying so
}

TEST(ResponseHead, NoContentHasNoLengthAndTheNextResponseFollowsIt) {
  std::string wire;
  append_response_head(wire, HttpResponse{204, {}, {}, {}}, Connection::keep_alive);
  EXPECT_EQ(wire.find("Content-Length"), std::string::npos);
  EXPECT_EQ(wire.find("Content-Type"), std::string::npos);  // no body, no type
  const std::string next = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
  wire += next;  // what a keep-alive connection carries next
  std::size_t used = 0;
  EXPECT_EQ(parse_first(wire, used).result_int(), 204u);
  EXPECT_EQ(wire.substr(used), next);  // the 204 ended at its blank line
}

TEST(ResponseHead, EveryStatusCanopySendsHasItsReason) {
  for (const unsigned status : {200u, 201u, 202u, 400u, 402u, 403u, 404u, 405u, 409u, 410u, 413u, 415u, 422u, 429u, 500u, 503u}) {
    const auto r = read_back(json(status, "{}"), Connection::keep_alive);
    EXPECT_EQ(r.result_int(), status);
    EXPECT_EQ(r.reason(), http::obsolete_reason(static_cast<http::status>(status))) << status;
    EXPECT_FALSE(r.reason().empty()) << status;
  }
}
