// The HTTP listener: accepts connections on the configured address and runs one HttpSession per
// connection on a pool of Asio threads.
//
// At most `connections_max` connections are open at once (the configured cap, or less when the
// file-descriptor limit cannot hold it: net/fd_budget.hpp); past it a new one is accepted and closed at
// once. When accept fails for want of descriptors or memory, accepting pauses for
// limits::accept_retry_delay rather than spin. The acceptor and its pause timer live on one strand.
//
// Shutdown (SIGTERM/SIGINT, see app/serve.cpp): stop_accepting() closes the listener, marks the
// service not ready and closes WebSockets with "going away"; wait_idle() waits (bounded) for answers
// still owed and the closes; stop() ends the threads.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "actors/services.hpp"
#include "net/router.hpp"
#include "net/stream_hub.hpp"

namespace canopy::net {

class Server {
 public:
  // REQUIRES: connections_max >= 1 (net::apply_fd_budget gives it).
  Server(actors::Services& services, std::size_t connections_max);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens; false with a one-line `error` if the address cannot be used.
  bool listen(std::string& error);
  std::uint16_t port() const { return port_; }
  void start_threads();
  void stop_accepting();
  // Waits until no request is waiting for an answer and every WebSocket has closed, at most `limit`.
  void wait_idle(std::chrono::milliseconds limit);
  void stop();

 private:
  void do_accept();
  void on_accept(boost::asio::ip::tcp::socket socket);
  void pause_accepting();

  actors::Services& services_;
  const std::size_t connections_max_;
  Router router_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_retry_;  // on the acceptor's strand; owned here, so it outlives its waits
  StreamHub hub_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
};

}  // namespace canopy::net
