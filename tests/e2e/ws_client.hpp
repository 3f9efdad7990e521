// A WebSocket client for end-to-end tests of GET /v1/stream: real sockets, Beast, blocking calls with
// bounded waits (a test never hangs on a silent server).
#pragma once

#include <boost/json.hpp>

#include <atomic>
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
  // Sends `text` unless the server stops taking it in: gives up waiting (false) at `deadline` or once
  // `*stop` is set (looked at every few ms), so a thread flooding a server that no longer reads always
  // ends. A send given up on stays pending and completes while later read() calls run (when the server
  // reads again); until then every send_until returns false at once, and send() may not be used.
  bool send_until(const std::string& text, std::chrono::steady_clock::time_point deadline,
                  const std::atomic<bool>* stop = nullptr);
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
  // Before connect(): the socket's receive buffer, so a test can play a slow consumer without megabytes
  // of kernel buffering. It must be set before connecting: Linux fixes the window scale in the SYN from
  // the buffer then, and set later it neither shrinks the window already offered nor undoes its scale.
  void set_receive_buffer(int bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace canopy::test
