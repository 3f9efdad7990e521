#include "tests/e2e/ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace canopy::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

struct WsClient::Impl {
  asio::io_context ioc;
  std::optional<websocket::stream<beast::tcp_stream>> ws;
  beast::flat_buffer buffer;
  bool closed = false;
  unsigned close_code = 0;
  bool reading = false;
  beast::error_code read_ec;
  bool read_done = false;
  int receive_buffer_bytes = 0;  // 0: the system's default (autotuned)
  bool write_pending = false;  // a send_until given up on: it completes while reading
  beast::error_code write_ec;
};

WsClient::WsClient() : impl_(std::make_unique<Impl>()) {}
WsClient::~WsClient() = default;

bool WsClient::connect(std::uint16_t port, const std::string& token, unsigned* status) {
  impl_->ws.emplace(impl_->ioc);
  auto& lowest = beast::get_lowest_layer(*impl_->ws);
  lowest.expires_after(std::chrono::seconds(10));
  if (impl_->receive_buffer_bytes > 0) {
    lowest.socket().open(tcp::v4());
    lowest.socket().set_option(asio::socket_base::receive_buffer_size(impl_->receive_buffer_bytes));
  }
  lowest.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  impl_->ws->set_option(websocket::stream_base::decorator([token](websocket::request_type& req) {
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  }));
  websocket::response_type response;
  beast::error_code ec;
  impl_->ws->handshake(response, "127.0.0.1:" + std::to_string(port), "/v1/stream", ec);
  lowest.expires_never();
  if (status) *status = response.result_int();
  if (ec) {
    impl_->closed = true;
    return false;
  }
  return true;
}

void WsClient::send(const std::string& text) {
  impl_->ws->text(true);
  impl_->ws->write(asio::buffer(text));
}

bool WsClient::send_until(const std::string& text, std::chrono::steady_clock::time_point deadline,
                          const std::atomic<bool>* stop) {
  auto& im = *impl_;
  if (im.closed || im.write_pending) return false;
  im.write_pending = true;
  im.ws->text(true);
  im.ws->async_write(asio::buffer(text), [&im](beast::error_code ec, std::size_t) {
    im.write_ec = ec;
    im.write_pending = false;
  });
  im.ioc.restart();
  const auto given_up = [&] { return std::chrono::steady_clock::now() >= deadline || (stop && stop->load()); };
  while (im.write_pending && !given_up()) im.ioc.run_one_for(std::chrono::milliseconds(10));
  // Given up, the write stays pending rather than cancelled: Beast fails the whole stream on a
  // cancelled operation, and the test still wants to read what the server sent, then its close frame.
  return !im.write_pending && !im.write_ec;
}

std::optional<std::string> WsClient::read(std::chrono::milliseconds wait) {
  if (impl_->closed) return std::nullopt;
  auto& im = *impl_;
  if (!im.reading) {
    im.reading = true;
    im.read_done = false;
    im.ws->async_read(im.buffer, [&im](beast::error_code ec, std::size_t) {
      im.read_ec = ec;
      im.read_done = true;
    });
  }
  im.ioc.restart();
  // One handler at a time: a write left pending by send_until may share the loop with this read.
  const auto until = std::chrono::steady_clock::now() + wait;
  while (!im.read_done && std::chrono::steady_clock::now() < until) im.ioc.run_one_until(until);
  if (!im.read_done) return std::nullopt;  // still pending: the next read() keeps waiting for it
  im.reading = false;
  if (im.read_ec) {
    im.closed = true;
    if (im.read_ec == websocket::error::closed) im.close_code = static_cast<unsigned>(im.ws->reason().code);
    return std::nullopt;
  }
  std::string text = beast::buffers_to_string(im.buffer.data());
  im.buffer.consume(im.buffer.size());
  return text;
}

std::optional<boost::json::value> WsClient::read_json(std::chrono::milliseconds wait) {
  auto text = read(wait);
  if (!text) return std::nullopt;
  boost::system::error_code ec;
  auto value = boost::json::parse(*text, ec);
  if (ec) return std::nullopt;
  return value;
}

std::optional<boost::json::value> WsClient::read_type(const std::string& type, std::chrono::milliseconds wait) {
  const auto until = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < until) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    auto message = read_json(left);
    if (!message) return std::nullopt;
    if (message->is_object() && message->as_object().contains("type") && message->at("type") == type.c_str()) {
      return message;
    }
  }
  return std::nullopt;
}

void WsClient::close() {
  if (impl_->closed || !impl_->ws) return;
  beast::error_code ec;
  impl_->ws->close(websocket::close_code::normal, ec);
  impl_->closed = true;
}

bool WsClient::closed() const { return impl_->closed; }
unsigned WsClient::close_code() const { return impl_->close_code; }

void WsClient::set_receive_buffer(int bytes) { impl_->receive_buffer_bytes = bytes; }

}  // namespace canopy::test
