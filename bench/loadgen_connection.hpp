// One keep-alive HTTP/1.1 connection of the load phase, with up to `pipeline` requests in flight.
//
// Owned by a Worker and driven only from that Worker's io_context thread. The Worker decides when to
// send (closed or open loop); the connection writes, reads, parses, matches answers to requests in
// order, and reports back through ConnectionListener. Buffers (outgoing requests, incoming bytes,
// response body) belong to the connection and are reused for every request: after warm-up a request
// costs no allocation here.
//
// Answers must carry a Content-Length or be chunked; a body delimited by the server closing the
// connection counts as a broken connection (Beast servers always send a length).
//
// Every asynchronous step captures the connection's generation; closing bumps it, so a late
// completion of an abandoned socket is ignored instead of being taken for the new one's.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "bench/loadgen_http.hpp"
#include "bench/loadgen_options.hpp"

namespace canopy::loadgen {

using Clock = std::chrono::steady_clock;

struct SentRequest {
  Clock::time_point start;  // when it was sent, or, in the open loop, when the timetable said to send it
  std::uint32_t events = 0;
  bool measured = false;    // started inside the measured window
};

class Connection;

class ConnectionListener {
 public:
  virtual void on_open(Connection& connection) = 0;
  // body stays valid until the callback returns.
  virtual void on_response(Connection& connection, const SentRequest& sent, int status, const std::string& body) = 0;
  // The connection is closed now. was_open: it broke (lost = requests it had in flight, now without
  // answers); otherwise the connect itself failed.
  virtual void on_broken(Connection& connection, std::size_t lost, bool was_open) = 0;

 protected:
  ~ConnectionListener() = default;
};

class Connection {
 public:
  // REQUIRES: pipeline >= 1.
  Connection(boost::asio::io_context& io, const Target& target, ConnectionListener& listener, std::uint32_t pipeline);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Opens the connection; on_open or on_broken follows. REQUIRES: closed.
  void connect();
  void connect_after(Clock::duration pause);
  // Closes at once, without a callback; requests in flight are dropped.
  void close();

  bool can_send() const { return open_ && in_flight_ < pipeline_; }
  std::size_t in_flight() const { return in_flight_; }

  // Sending is two steps, so the caller builds the request straight into the connection's buffer:
  // append the whole request to request_buffer(), then commit() it.
  std::string& request_buffer() { return pending_; }
  void commit(const SentRequest& sent);  // REQUIRES: can_send()

  // Calls f(const SentRequest&) for each request waiting for its answer, oldest first.
  template <class F>
  void for_each_in_flight(F&& f) const {
    for (std::size_t i = 0; i < in_flight_; ++i) f(in_flight_ring_[(ring_head_ + i) % pipeline_]);
  }

  std::uint64_t bytes_sent() const { return bytes_sent_; }
  std::uint64_t bytes_received() const { return bytes_received_; }

 private:
  void on_connect(const boost::system::error_code& ec, std::uint64_t generation);
  void do_write();
  void on_write(const boost::system::error_code& ec, std::size_t bytes, std::uint64_t generation);
  void do_read();
  void on_read(const boost::system::error_code& ec, std::size_t bytes, std::uint64_t generation);
  // Parses every complete response in read_buffer_; false when the connection was closed meanwhile.
  bool parse_responses();
  void fail();

  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer pause_timer_;
  const Target& target_;
  ConnectionListener& listener_;
  const std::uint32_t pipeline_;

  bool open_ = false;
  bool writing_now_ = false;
  std::uint64_t generation_ = 0;

  std::vector<SentRequest> in_flight_ring_;  // pipeline_ slots; answers come back in send order
  std::size_t ring_head_ = 0;
  std::size_t in_flight_ = 0;

  std::string pending_;  // requests not yet handed to the socket
  std::string writing_;  // requests the socket is writing now
  boost::beast::flat_buffer read_buffer_;
  std::string body_;
  std::optional<ResponseParser> parser_;

  std::uint64_t bytes_sent_ = 0;
  std::uint64_t bytes_received_ = 0;
};

}  // namespace canopy::loadgen
