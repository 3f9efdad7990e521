// A WebSocket client for end-to-end tests of GET /v1/stream: real sockets, Beast, blocking calls with
// bounded waits (a test never hangs on a silent server).
#pragma once

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace canopy::test {

class WsClient {
 public:
  WsClient();
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // Opens ws://127.0.0.1:<port>/v1/stream with `token` (none: no Authorization header). On a refused
  // upgrade returns false and sets `status` to the HTTP status the server answered.
  bool connect(std::uint16_t port, const std::string& token, unsigned* status = nullptr);
  void send(const std::string& text);
  void send(const boost::json::value& message) { send(boost::json::serialize(message)); }
  // The next text message, or nullopt when none came within `wait` or the connection closed
  // (closed() then tells, with close_code()).
  std::optional<std::string> read(std::chrono::milliseconds wait = std::chrono::seconds(5));
  std::optional<boost::json::value> read_json(std::chrono::milliseconds wait = std::chrono::seconds(5));
  // Reads until a message of `type` (skipping others), or nullopt.
  std::optional<boost::json::value> read_type(const std::string& type, std::chrono::milliseconds wait = std::chrono::seconds(5));
  void close();
  bool closed() const;
  // The close code the server sent (0 if none).
  unsigned close_code() const;
  // Shrinks the receive buffer so a test can play a slow consumer without megabytes of kernel buffering.
  void set_receive_buffer(int bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace canopy::test
