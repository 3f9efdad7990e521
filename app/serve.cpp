#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <cstdio>

#include "actors/runtime.hpp"
#include "app/commands.hpp"
#include "app/demo.hpp"
#include "config/limits.hpp"
#include "net/fd_budget.hpp"
#include "net/metrics.hpp"
#include "net/server.hpp"

namespace canopy::app {

int serve(const config::Options& options) {
  // Handle SIGINT/SIGTERM before anything else starts (threads, the "listening" line): a signal that
  // arrives at any moment after this still means a clean stop with a final checkpoint.
  boost::asio::io_context signals_context;
  boost::asio::signal_set signals(signals_context, SIGINT, SIGTERM);
  int received = 0;
  signals.async_wait([&received](const boost::system::error_code&, int signal) { received = signal; });

  // Before anything opens descriptors: the connection cap the file-descriptor limit can hold.
  const auto fds = net::apply_fd_budget(options.connections_max);
  if (fds.serves_none()) {
    std::fprintf(stderr, "canopy: %s\n", net::describe(fds).c_str());
    return 1;
  }

  std::string error;
  std::string generated_token;
  auto runtime = actors::Runtime::start(options, error, generated_token);
  if (!runtime) {
    std::fprintf(stderr, "canopy: %s\n", error.c_str());
    return 1;
  }
  auto server = std::make_unique<net::Server>(runtime->services(), fds.connections_max);
  if (!server->listen(error)) {
    std::fprintf(stderr, "canopy: %s\n", error.c_str());
    return 2;
  }
  if (!generated_token.empty()) {
    std::printf("canopy: operator token (shown once, stored hashed): %s\n", generated_token.c_str());
  }
  std::printf("canopy: recovered %llu journal records from %s; %zu organizations\n",
              static_cast<unsigned long long>(runtime->recovered_records()), options.data_dir.c_str(),
              runtime->services().directory.org_count());
  // Said once, like Redis does, so an operator sees why connections are refused below the cap.
  if (!fds.serves_all()) std::printf("canopy: %s\n", net::describe(fds).c_str());
  if (options.demo) std::printf("canopy: %s\n", start_demo(runtime->services()).c_str());
  std::printf("canopy: listening on http://%s:%u\n", options.listen_host.c_str(), static_cast<unsigned>(server->port()));
  std::fflush(stdout);

  server->start_threads();
  net::metrics().ready.store(true, std::memory_order_release);
  signals_context.run();

  // Stop accepting, let answers already owed go out, then make everything durable and stop.
  std::printf("canopy: signal %d, shutting down\n", received);
  std::fflush(stdout);
  server->stop_accepting();
  server->wait_idle(std::chrono::duration_cast<std::chrono::milliseconds>(limits::request_deadline));
  server->stop();
  runtime->shutdown();
  server.reset();   // before the runtime: it unhooks its stream hub from the runtime's services
  runtime.reset();
  std::printf("canopy: stopped cleanly\n");
  return 0;
}

}  // namespace canopy::app
