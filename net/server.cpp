#include "net/server.hpp"

#include <boost/asio/strand.hpp>

#include "config/limits.hpp"
#include "net/http_session.hpp"
#include "net/mailer.hpp"
#include "net/webhook_dispatcher.hpp"
#include "net/metrics.hpp"

namespace canopy::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Server::Server(actors::Services& services, std::size_t connections_max)
    : services_(services),
      connections_max_(connections_max),
      router_(services),
      ioc_(static_cast<int>(services.options.io_threads)),
      acceptor_(asio::make_strand(ioc_)),
      accept_retry_(acceptor_.get_executor()),
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

namespace {

// Accept failures for want of a resource: the connection stays in the backlog, so an immediate retry
// fails the same way. (ECONNABORTED and the like concern one connection only: retry at once.)
bool short_of_resources(const boost::system::error_code& ec) {
  namespace errc = boost::system::errc;
  return ec == errc::too_many_files_open || ec == errc::too_many_files_open_in_system ||
         ec == errc::no_buffer_space || ec == errc::not_enough_memory;
}

}  // namespace

void Server::do_accept() {
  // Each connection gets its own strand: its steps never run concurrently, on any I/O thread.
  acceptor_.async_accept(asio::make_strand(ioc_), [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (short_of_resources(ec)) return pause_accepting();
    if (!ec) on_accept(std::move(socket));
    do_accept();
  });
}

// Past the cap a connection is closed at once, so the client learns at once and the backlog never fills.
void Server::on_accept(tcp::socket socket) {
  if (metrics().connections_open.load(std::memory_order_relaxed) >= connections_max_) {
    metrics().connections_refused.fetch_add(1, std::memory_order_relaxed);
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  start_http_session(std::move(socket), router_, hub_, services_.options.body_bytes_limit);
}

// Out of descriptors (or memory): wait for some to come free instead of retrying in a busy loop, as
// nginx does. Connections arriving meanwhile wait in the backlog. stop_accepting() cancels the wait.
void Server::pause_accepting() {
  metrics().accept_pauses.fetch_add(1, std::memory_order_relaxed);
  accept_retry_.expires_after(limits::accept_retry_delay);
  accept_retry_.async_wait([this](boost::system::error_code ec) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    do_accept();
  });
}

void Server::start_threads() {
  hub_.start();
  for (unsigned i = 0; i < services_.options.io_threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
}

void Server::stop_accepting() {
  metrics().ready.store(false, std::memory_order_release);
  // On the acceptor's strand: never beside an accept handler or the retry timer's.
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
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
