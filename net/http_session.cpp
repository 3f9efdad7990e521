#include "net/http_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <optional>

#include "config/limits.hpp"
#include "net/json_in.hpp"
#include "net/metrics.hpp"
#include "net/response_head.hpp"
#include "net/router.hpp"
#include "net/ws_session.hpp"

namespace canopy::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::atomic<std::size_t> in_flight{0};

Method to_method(http::verb verb) {
  switch (verb) {
    case http::verb::get: return Method::get;
    case http::verb::head: return Method::get;  // routed as GET; only the head is sent (write())
    case http::verb::post: return Method::post;
    case http::verb::put: return Method::put;
    case http::verb::patch: return Method::patch;
    case http::verb::delete_: return Method::del;
    default: return Method::other;
  }
}

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, const Router& router, StreamHub& hub, std::size_t body_limit)
      : stream_(std::move(socket)), router_(router), hub_(hub), body_limit_(body_limit), deadline_(stream_.get_executor()) {
    buffer_.reserve(limits::read_buffer_bytes_initial);  // a single-event request and its headers in one read
    metrics().connections_open.fetch_add(1, std::memory_order_relaxed);
  }
  ~HttpSession() { metrics().connections_open.fetch_sub(1, std::memory_order_relaxed); }

  void start() {
    // Run on the strand from the start.
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); });
  }

 private:
  // Reads the next request, with a fresh parser so limits apply per request: its header a read at a
  // time, counting the bytes the parser consumed, then its body.
  //
  // Beast (1.81) applies its own header limit only to what follows the fields its first read parsed
  // and consumed, so with a buffer larger than 512 bytes a header a few KiB past the limit passed.
  // Counted here, on the raw bytes, the limit holds however they arrive.
  void do_read() {
    // A connection that read a large body goes back to a small buffer while it waits.
    if (buffer_.size() == 0 && buffer_.capacity() > limits::read_buffer_bytes_initial) {
      buffer_.shrink_to_fit();
      buffer_.reserve(limits::read_buffer_bytes_initial);
    }
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits::header_bytes_max));
    parser_->body_limit(body_limit_);
    header_bytes_ = 0;
    announce_keep_alive_ = false;
    head_only_ = false;
    stream_.expires_after(limits::keep_alive_idle_timeout);
    read_header();
  }

  void read_header() {
    http::async_read_some(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->on_header_read(ec, n);
    });
  }

  void on_header_read(beast::error_code ec, std::size_t consumed) {
    if (ec) return on_read(ec);
    header_bytes_ += consumed;
    if (header_bytes_ > limits::header_bytes_max) return answer_and_close(headers_too_large());
    if (!parser_->is_header_done()) return read_header();
    if (parser_->is_done()) return on_read({});  // no body
    const std::size_t body = static_cast<std::size_t>(parser_->content_length().value_or(0));
    // Room for the JSON parser's padding from the start (Beast's body only reserves the length). Not
    // past the body limit: a Content-Length is only a claim until the bytes come.
    if (body > 0 && body <= body_limit_) parser_->get().body().reserve(padded_capacity(body));
    // A small request usually arrives whole: its body is in the buffer already, parsed here rather
    // than through one more asynchronous read (a completion per request on the I/O thread).
    if (body > 0 && buffer_.size() >= body) {
      beast::error_code put_ec;
      buffer_.consume(parser_->put(buffer_.data(), put_ec));
      if (put_ec != http::error::need_more && (put_ec || parser_->is_done())) return on_read(put_ec);
    }
    // Beast reads at most the buffer's free room per call (never less than 512 bytes): room for the
    // body, up to the most Beast reads at once, makes a 100 KB batch 2 reads instead of 200.
    if (body > buffer_.capacity()) buffer_.reserve(std::min(body, limits::read_buffer_bytes_max));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code e, std::size_t) { self->on_read(e); });
  }

  // Turns read errors into a final answer or a close; hands good requests to the router.
  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof) {
      return close();
    }
    if (ec == http::error::body_limit) {
      return answer_and_close(domain::Error{domain::Errc::payload_too_large,
                                            "The request body is larger than " + std::to_string(body_limit_) + " bytes",
                                            {{"limit_bytes", static_cast<std::int64_t>(body_limit_)}}});
    }
    if (ec == http::error::header_limit) return answer_and_close(headers_too_large());
    if (ec) return answer_and_close(domain::invalid(std::string("Malformed HTTP request: ") + ec.message()));
    dispatch();
  }

  static domain::Error headers_too_large() {
    return domain::invalid("The request headers are larger than " + std::to_string(limits::header_bytes_max) + " bytes");
  }

  void dispatch() {
    auto message = parser_->release();
    // A transfer coding we do not decode leaves the body's framing unknown (RFC 9112 §6.1): refuse and
    // close, so nothing after it on this connection can be smuggled in as a request.
    if (message.find(http::field::transfer_encoding) != message.end() && !message.chunked()) {
      return answer_and_close(domain::invalid("Transfer-Encoding other than chunked is not supported"));
    }
    if (beast::websocket::is_upgrade(message) && message.target() == "/v1/stream") return upgrade(std::move(message));
    keep_alive_ = message.keep_alive();
    announce_keep_alive_ = keep_alive_ && message.version() == 10;
    head_only_ = message.method() == http::verb::head;
    HttpRequest& req = request_;
    req = HttpRequest{};
    req.method = to_method(message.method());
    const std::string_view target = message.target();
    const auto q = target.find('?');
    req.path.assign(target.substr(0, q));
    if (q != std::string_view::npos) req.query.assign(target.substr(q + 1));
    if (auto it = message.find(http::field::authorization); it != message.end()) req.authorization.assign(it->value());
    if (auto it = message.find(http::field::content_type); it != message.end()) req.content_type.assign(it->value());
    if (auto it = message.find("Idempotency-Key"); it != message.end()) {
      req.idempotency_key.assign(it->value());
      req.has_idempotency_key = true;
    }
    req.body = std::move(message.body());

    const std::uint64_t generation = ++generation_;
    awaiting_ = true;
    in_flight.fetch_add(1, std::memory_order_relaxed);
    // If the actors do not answer in time, the client hears 503 and may retry with the same id.
    deadline_.expires_after(limits::request_deadline);
    deadline_.async_wait([self = shared_from_this(), generation](beast::error_code ec) {
      if (!ec) {
        self->on_answer(error_response(domain::Error{domain::Errc::unavailable,
                                                     "The request was not answered in time; retrying is safe"}),
                        generation);
      }
    });
    // The router may answer from any thread: hop back onto this connection's strand.
    Respond respond = [weak = weak_from_this(), generation](HttpResponse response) {
      if (auto self = weak.lock()) {
        asio::post(self->stream_.get_executor(), [self, generation, r = std::move(response)]() mutable {
          self->on_answer(std::move(r), generation);
        });
      }
    };
    router_.handle(req, std::move(respond));
  }

  // What is wrong with a WebSocket handshake (RFC 6455 §4.2.1), if anything: Beast would refuse it in
  // plain text; here it is answered, as every error is, in JSON naming the header. The key must be the
  // base64 of 16 bytes: 22 characters, the last carrying 2 bits (A, Q, g or w), then "==".
  static std::optional<HttpResponse> bad_handshake(const http::request<http::string_body>& message) {
    const auto refuse = [](std::string header, std::string message_text) {
      return error_response(domain::invalid_field(std::move(header), std::move(message_text)));
    };
    if (message[http::field::sec_websocket_version] != "13") {
      HttpResponse r = refuse("Sec-WebSocket-Version", "The WebSocket upgrade needs Sec-WebSocket-Version: 13");
      r.headers.emplace_back("Sec-WebSocket-Version", "13");  // the version understood (§4.4)
      return r;
    }
    const std::string_view key = message[http::field::sec_websocket_key];
    const auto base64 = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/'; };
    const bool well_formed = key.size() == 24 && key.substr(22) == "==" &&
                             std::all_of(key.begin(), key.begin() + 22, base64) &&
                             std::string_view("AQgw").find(key[21]) != std::string_view::npos;
    if (!well_formed) return refuse("Sec-WebSocket-Key", "Sec-WebSocket-Key must be the base64 of 16 bytes");
    return std::nullopt;
  }

  // The stream authenticates on the upgrade: a bad token gets a plain 401 and no WebSocket.
  void upgrade(http::request<http::string_body> message) {
    head_only_ = false;
    announce_keep_alive_ = false;
    if (auto refused = bad_handshake(message)) {
      keep_alive_ = false;
      return write(std::move(*refused));
    }
    std::optional<actors::Principal> principal;
    if (auto it = message.find(http::field::authorization); it != message.end()) {
      principal = authenticate(router_.services(), it->value());
    }
    if (!principal) {
      return answer_and_close(domain::Error{domain::Errc::unauthenticated,
                                            "Send a valid token as 'Authorization: Bearer <token>' on the upgrade"});
    }
    start_ws_session(std::move(stream_), std::move(message), router_.services(), hub_, *principal);
  }

  void on_answer(HttpResponse answer, std::uint64_t generation) {
    if (!awaiting_ || generation != generation_) return;  // late or duplicate answer
    awaiting_ = false;
    in_flight.fetch_sub(1, std::memory_order_relaxed);
    deadline_.cancel();
    write(std::move(answer));
  }

  // Head and body go out in one gather write (net/response_head.hpp); both stay alive in the session
  // until it completes. An answer to HEAD is its head alone.
  void write(HttpResponse answer) {
    metrics().count_status(answer.status);
    head_.clear();
    append_response_head(head_, answer,
                         !keep_alive_           ? Connection::close
                         : announce_keep_alive_ ? Connection::keep_alive_announced
                                                : Connection::keep_alive);
    body_ = head_only_ ? std::string() : std::move(answer.body);
    stream_.expires_after(limits::request_read_timeout);
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body_)};
    asio::async_write(stream_, buffers, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_write(ec);
    });
  }

  void on_write(beast::error_code ec) {
    body_ = std::string();  // an idle connection does not hold its last answer (a report can be MBs)
    if (ec || !keep_alive_) return close();
    do_read();
  }

  // A request we cannot read safely gets one answer and the connection closes (its framing is lost).
  void answer_and_close(const domain::Error& error) {
    keep_alive_ = false;
    write(error_response(error));
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    deadline_.cancel();
    if (awaiting_) {
      awaiting_ = false;
      in_flight.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::size_t header_bytes_ = 0;  // of the request being read: what the parser consumed of its header
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string head_;  // of the response being written
  std::string body_;
  HttpRequest request_;
  const Router& router_;
  StreamHub& hub_;
  const std::size_t body_limit_;
  asio::steady_timer deadline_;
  bool keep_alive_ = false;
  bool announce_keep_alive_ = false;  // an HTTP/1.0 client asked for keep-alive: say it is kept
  bool head_only_ = false;            // the request is a HEAD
  bool awaiting_ = false;
  std::uint64_t generation_ = 0;
};

}  // namespace

void start_http_session(tcp::socket socket, const Router& router, StreamHub& hub, std::size_t body_bytes_limit) {
  std::make_shared<HttpSession>(std::move(socket), router, hub, body_bytes_limit)->start();
}

std::size_t requests_in_flight() { return in_flight.load(std::memory_order_relaxed); }

}  // namespace canopy::net
