#include "net/server.hpp"

#include <boost/asio/strand.hpp>

#include "net/http_session.hpp"
#include "net/mailer.hpp"
#include "net/webhook_dispatcher.hpp"
#include "net/metrics.hpp"

namespace canopy::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Server::Server(actors::Services& services)
    : services_(services),
      router_(services),
      ioc_(static_cast<int>(services.options.io_threads)),
      acceptor_(ioc_),
      hub_(services.directory, services.clock, ioc_) {
  services_.directory.set_change_listener([this](domain::OrgId org) { hub_.changed(org); });
  services_.alert_listener.set([this](const std::vector<domain::Alert>& alerts) { hub_.alerts(alerts); });
  services_.background.push_back(spawn_webhook_dispatcher(services_));
  // Invitation email goes out through the mailer; the runtime stops it with the other background actors.
  services_.mailer = spawn_mailer(services_.system, services_.options, services_.mail_stats);
  services_.background.push_back(services_.mailer);
}

Server::~Server() {
  stop();
  services_.directory.set_change_listener(nullptr);
  services_.alert_listener.set(nullptr);
}

bool Server::listen(std::string& error) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(services_.options.listen_host, ec);
  if (ec) {
    error = "--listen: '" + services_.options.listen_host + "' is not an IP address";
    return false;
  }
  const tcp::endpoint endpoint{address, services_.options.listen_port};
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = "cannot listen on " + services_.options.listen_host + ":" + std::to_string(services_.options.listen_port) +
            ": " + ec.message();
    return false;
  }
  port_ = acceptor_.local_endpoint().port();
  do_accept();
  return true;
}

void Server::do_accept() {
  // Each connection gets its own strand: its steps never run concurrently, on any I/O thread.
  acceptor_.async_accept(asio::make_strand(ioc_), [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      if (metrics().connections_open.load(std::memory_order_relaxed) >= services_.options.connections_max) {
        metrics().connections_refused.fetch_add(1, std::memory_order_relaxed);
        boost::system::error_code ignored;
        socket.close(ignored);
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        start_http_session(std::move(socket), router_, hub_, services_.options.body_bytes_limit);
      }
    }
    do_accept();
  });
}

void Server::start_threads() {
  hub_.start();
  for (unsigned i = 0; i < services_.options.io_threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
}

void Server::stop_accepting() {
  metrics().ready.store(false, std::memory_order_release);
  asio::post(ioc_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    hub_.shutdown();
  });
}

void Server::wait_idle(std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while ((requests_in_flight() > 0 || hub_.connections() > 0) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Server::stop() {
  ioc_.stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace canopy::net
