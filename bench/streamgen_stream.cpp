#include "bench/streamgen_stream.hpp"

#include <charconv>
#include <optional>
#include <string_view>

#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

namespace canopy::streamgen {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

// The server's pushes are a few hundred bytes; anything near this is not a push.
constexpr std::size_t message_bytes_max = 64 * 1024;

// The string value of the first "key":"…" in text. The server writes compact JSON and puts "type"
// first, "org_id" second, in every message (views.cpp write_balance_event, ws_session.cpp); a scan is
// far cheaper than a parse at a few hundred thousand messages a second, and the tool runs on the
// same two cores as the server.
std::optional<std::string_view> string_field(std::string_view text, std::string_view quoted_key) {
  const auto at = text.find(quoted_key);
  if (at == std::string_view::npos) return std::nullopt;
  auto pos = at + quoted_key.size();
  if (pos + 1 >= text.size() || text[pos] != ':' || text[pos + 1] != '"') return std::nullopt;
  pos += 2;
  const auto end = text.find('"', pos);
  if (end == std::string_view::npos) return std::nullopt;
  return text.substr(pos, end - pos);
}

std::optional<std::int64_t> int_field(std::string_view text, std::string_view quoted_key) {
  const auto at = text.find(quoted_key);
  if (at == std::string_view::npos) return std::nullopt;
  const auto pos = at + quoted_key.size();
  if (pos >= text.size() || text[pos] != ':') return std::nullopt;
  std::int64_t value = 0;
  const char* first = text.data() + pos + 1;
  const auto [ptr, ec] = std::from_chars(first, text.data() + text.size(), value);
  if (ec != std::errc{} || ptr == first) return std::nullopt;
  return value;
}

}  // namespace

struct StreamShard::Connection {
  explicit Connection(asio::io_context& io) : ws(io) {}
  websocket::stream<beast::tcp_stream> ws;
  beast::flat_buffer buffer;
  std::vector<Subscription> subs;
  std::size_t next_subscribe = 0;
  std::string out;  // the subscribe message being written
};

StreamShard::StreamShard(const StreamConfig& config) : config_(config), work_(io_.get_executor()) {}

StreamShard::~StreamShard() {
  if (thread_.joinable()) stop();
}

void StreamShard::add_connection(const std::vector<std::uint32_t>& orgs) {
  auto c = std::make_unique<Connection>(io_);
  for (const auto org : orgs) {
    Subscription sub;
    sub.org = org;
    c->subs.push_back(std::move(sub));
  }
  subscription_count_ += orgs.size();
  connections_.push_back(std::move(c));
}

void StreamShard::start() {
  thread_ = std::thread([this] {
    asio::post(io_, [this] { connect_more(); });
    io_.run();
  });
}

void StreamShard::stop() {
  asio::post(io_, [this] {
    stopping_ = true;
    for (auto& c : connections_) {
      auto& socket = beast::get_lowest_layer(c->ws).socket();
      if (!socket.is_open()) continue;
      boost::system::error_code ignored;
      socket.set_option(asio::socket_base::linger(true, 0), ignored);
      socket.close(ignored);
    }
    io_.stop();  // whatever completes after this is of no interest
  });
  thread_.join();
}

// Keeps up to connect_concurrency connections in their TCP connect or WebSocket handshake.
void StreamShard::connect_more() {
  while (!stopping_ && opening_ < config_.connect_concurrency && next_to_open_ < connections_.size()) {
    Connection& c = *connections_[next_to_open_++];
    ++opening_;
    auto& lowest = beast::get_lowest_layer(c.ws);
    lowest.expires_after(config_.handshake_timeout);
    lowest.async_connect(config_.target.endpoint, [this, &c](const boost::system::error_code& ec) {
      if (stopping_) return;
      if (ec) return on_opened(c, false);
      auto& low = beast::get_lowest_layer(c.ws);
      boost::system::error_code ignored;
      low.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
      // From here the WebSocket's own timeouts apply (Beast: never both on one stream).
      low.expires_never();
      websocket::stream_base::timeout timeout{};
      timeout.handshake_timeout = config_.handshake_timeout;
      timeout.idle_timeout = websocket::stream_base::none();
      timeout.keep_alive_pings = false;
      c.ws.set_option(timeout);
      c.ws.set_option(websocket::stream_base::decorator([token = config_.token](websocket::request_type& req) {
        req.set(beast::http::field::authorization, "Bearer " + token);
      }));
      c.ws.read_message_max(message_bytes_max);
      c.ws.async_handshake(config_.target.host_header, "/v1/stream", [this, &c](const boost::system::error_code& hec) {
        if (stopping_) return;
        on_opened(c, !hec);
      });
    });
  }
}

void StreamShard::on_opened(Connection& c, bool ok) {
  --opening_;
  if (ok) {
    counters_.opened.fetch_add(1, std::memory_order_relaxed);
    do_read(c);
    send_subscribe(c);
  } else {
    counters_.connect_failed.fetch_add(1, std::memory_order_relaxed);
    boost::system::error_code ignored;
    beast::get_lowest_layer(c.ws).socket().close(ignored);
  }
  connect_more();
}

// One subscribe at a time (Beast allows one write in flight), each after the previous one is written.
void StreamShard::send_subscribe(Connection& c) {
  if (c.next_subscribe >= c.subs.size()) return;
  c.out = R"({"op":"subscribe","org_id":")" + (*config_.org_ids)[c.subs[c.next_subscribe].org] + "\"}";
  c.ws.text(true);
  c.ws.async_write(asio::buffer(c.out), [this, &c](const boost::system::error_code& ec, std::size_t) {
    if (ec || stopping_) return;  // a broken connection is counted by its read
    ++c.next_subscribe;
    send_subscribe(c);
  });
}

void StreamShard::do_read(Connection& c) {
  c.ws.async_read(c.buffer, [this, &c](const boost::system::error_code& ec, std::size_t) { on_read(c, ec); });
}

void StreamShard::on_read(Connection& c, const boost::system::error_code& ec) {
  if (stopping_) return;
  if (ec) {
    if (ec == websocket::error::closed) {
      counters_.closed_by_server.fetch_add(1, std::memory_order_relaxed);
      ++close_codes_[static_cast<unsigned>(c.ws.reason().code)];
    } else {
      counters_.read_errors.fetch_add(1, std::memory_order_relaxed);
    }
    return;
  }
  const std::int64_t t_ns = since(config_.epoch, Clock::now());
  const auto data = c.buffer.data();
  handle_message(c, std::string_view{static_cast<const char*>(data.data()), data.size()}, t_ns);
  c.buffer.consume(c.buffer.size());
  do_read(c);
}

void StreamShard::handle_message(Connection& c, std::string_view text, std::int64_t t_ns) {
  const auto type = string_field(text, R"("type")");
  const auto org = string_field(text, R"("org_id")");
  const auto spend = int_field(text, R"("cycle_spend_micros")");
  if (!type) {
    counters_.unparsed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (*type == "alert") {
    counters_.alerts.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (*type == "error") {
    counters_.error_messages.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Subscription* sub = nullptr;
  if (org) {
    for (auto& s : c.subs) {
      if ((*config_.org_ids)[s.org] == *org) sub = &s;
    }
  }
  if (!sub || !spend || (*type != "balance" && *type != "subscribed")) {
    counters_.unparsed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (*type == "subscribed") {
    sub->subscribed = true;
    sub->snapshot_spend_micros = *spend;
    counters_.subscribed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  counters_.pushes.fetch_add(1, std::memory_order_relaxed);
  if (records_kept_ >= config_.push_records_max) {
    counters_.records_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  ++records_kept_;
  sub->pushes.push_back(PushRecord{t_ns, *spend});
}

std::vector<const Subscription*> StreamShard::subscriptions() const {
  std::vector<const Subscription*> out;
  out.reserve(subscription_count_);
  for (const auto& c : connections_) {
    for (const auto& s : c->subs) out.push_back(&s);
  }
  return out;
}

}  // namespace canopy::streamgen
