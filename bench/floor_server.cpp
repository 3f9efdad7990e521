// canopy-floor: what Canopy's single-charge design costs on this machine before any of Canopy's work.
//
// A Beast keep-alive HTTP server with one I/O thread, as the gateway is, that answers every request
// 200 after the hand-offs a single charge makes and nothing else (no parsing, authorization, rule or
// store). Each mode adds one kind of step to the one before:
//
//   bare    the answer is written on the I/O thread: the HTTP floor
//   actor   one CAF actor round trip (the gateway's message to the origin's actor, and its answer)
//   chain   a relay up three actors and back down (origin, parent, payer: a charge's chain)
//   writer  the chain, the top actor asking a detached writer actor that answers everything its
//           mailbox held at once (a group commit without a disk)
//   fsync   the same writer, writing and fdatasync-ing a page of a file once per group
//   direct  the fsync writer asked straight from the I/O thread, no org actor: the hand-offs left if
//           the orgs' work ran on the I/O thread (a design Canopy does not have, measured for scale)
//
// The actors run on Canopy's scheduler (actors/scheduler_policy.hpp) with the same number of workers,
// and the answer comes back to the session's strand the way the gateway's does (net/http_session.cpp).
// Drive it with `canopy-loadgen --mode probe` (GET /healthz) and compare the modes' requests/s and
// server CPU per request: docs/benchmarks.md. Loopback only, like the load generator.
//
//   canopy-floor --listen 127.0.0.1:18790 --mode chain [--actor-threads 2] [--trees 5000]
#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <caf/all.hpp>

#include <CLI/CLI.hpp>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/scheduler_policy.hpp"

namespace canopy::floor {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

enum class Mode { bare, actor, chain, writer, fsync, direct };

// One request's way through the actors: the callback that answers it, and the actors it passed on
// the way up, which the answer retraces down.
struct Job {
  std::function<void()> done;
  std::vector<caf::actor> path;
};
using JobPtr = std::shared_ptr<Job>;

}  // namespace
}  // namespace canopy::floor

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(canopy::floor::JobPtr)

namespace canopy::floor {
namespace {

using up_atom = caf::atom_constant<caf::atom("up")>;
using down_atom = caf::atom_constant<caf::atom("down")>;
using append_atom = caf::atom_constant<caf::atom("append")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;

// Origin, parent, payer: a charge's chain in the load generator's forests (up to 4 orgs, 2.95 on average).
constexpr std::size_t chain_orgs = 3;

// Down the path: to the actor below, or, at the origin, the answer.
void pass_down(caf::event_based_actor* self, const JobPtr& job) {
  job->path.pop_back();  // this actor
  if (job->path.empty()) return job->done();
  self->send(job->path.back(), down_atom::value, job);
}

// An org's actor: passes a job up to its parent, or at the top of the chain to the writer (if any),
// and passes answers down.
caf::behavior org(caf::event_based_actor* self, caf::actor parent, caf::actor writer) {
  return {
      [=](up_atom, const JobPtr& job) {
        job->path.push_back(caf::actor_cast<caf::actor>(self));
        if (parent) return self->send(parent, up_atom::value, job);
        if (writer) return self->send(writer, append_atom::value, job);
        pass_down(self, job);
      },
      [=](down_atom, const JobPtr& job) { pass_down(self, job); },
  };
}

struct WriterState {
  std::vector<JobPtr> waiting;
  bool flush_queued = false;
  int fd = -1;  // fsync and direct modes: the file each group writes a page of and syncs
  static inline const char* name = "floor.writer";
};

// Answers every job its mailbox held when the flush it queued behind them comes up: one group per
// drain of the mailbox, as Canopy's writer commits (actors/writer.cpp), with no store behind it.
caf::behavior writer(caf::stateful_actor<WriterState>* self, int fd) {
  self->state.fd = fd;
  return {
      [=](append_atom, const JobPtr& job) {
        auto& st = self->state;
        st.waiting.push_back(job);
        if (!st.flush_queued) {
          st.flush_queued = true;
          self->send(self, flush_atom::value);
        }
      },
      [=](flush_atom) {
        auto& st = self->state;
        st.flush_queued = false;
        if (st.fd >= 0) {
          static const std::array<char, 4096> page{};
          if (::pwrite(st.fd, page.data(), page.size(), 0) != static_cast<ssize_t>(page.size()) || ::fdatasync(st.fd) != 0) {
            std::perror("canopy-floor: the writer's file");
            std::abort();
          }
        }
        for (auto& job : st.waiting) {
          if (job->path.empty()) job->done();  // direct: asked by the I/O thread, answered to it
          else self->send(job->path.back(), down_atom::value, std::move(job));
        }
        st.waiting.clear();
      },
  };
}

// `trees` chains of org actors; a request starts at the bottom of one (its origin).
struct Forest {
  std::vector<caf::actor> origins;
  std::vector<caf::actor> all;
};

Forest spawn_forest(caf::actor_system& system, Mode mode, std::size_t trees, const caf::actor& writer) {
  Forest forest;
  const std::size_t depth = mode == Mode::actor ? 1 : chain_orgs;
  forest.origins.reserve(trees);
  forest.all.reserve(trees * depth);
  for (std::size_t t = 0; t < trees; ++t) {
    caf::actor above;
    for (std::size_t level = 0; level < depth; ++level) {
      above = system.spawn(org, above, writer);
      forest.all.push_back(above);
    }
    forest.origins.push_back(above);
  }
  return forest;
}

// xorshift64: which origin a request starts at (the I/O thread's own, so no lock).
struct Pick {
  std::uint64_t state = 0x9e3779b97f4a7c15ull;
  std::size_t below(std::size_t n) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return static_cast<std::size_t>(state % n);
  }
};

struct Shared {
  Mode mode = Mode::bare;
  caf::actor writer;  // writer, fsync and direct modes; direct: the one the I/O thread asks
  Forest forest;      // empty in bare and direct modes
  Pick pick;
};

// A keep-alive connection. Its reads are bounded by Beast's parser defaults (8 KiB of header, 1 MiB
// of body); it keeps no deadline, as the load generator it serves is on loopback and bounded in time.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, Shared& shared) : stream_(std::move(socket)), shared_(shared) {}

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

 private:
  void read() {
    request_ = {};
    http::async_read(stream_, buffer_, request_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (!ec) self->handle();
    });
  }

  void handle() {
    if (shared_.mode == Mode::bare) return answer();
    auto job = std::make_shared<Job>();
    // The job keeps the session alive until it is answered (Canopy's sessions hold themselves through
    // their request deadline's timer).
    job->done = [self = shared_from_this()] { asio::post(self->stream_.get_executor(), [self] { self->answer(); }); };
    if (shared_.mode == Mode::direct) return caf::anon_send(shared_.writer, append_atom::value, std::move(job));
    const auto& origins = shared_.forest.origins;
    const caf::actor& origin = origins[shared_.pick.below(origins.size())];
    caf::anon_send(origin, up_atom::value, std::move(job));
  }

  void answer() {
    response_ = {http::status::ok, request_.version()};
    response_.set(http::field::content_type, "application/json");
    response_.keep_alive(request_.keep_alive());
    response_.body() = R"({"status":"ok"})";
    response_.prepare_payload();
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (!ec && self->response_.keep_alive()) self->read();
    });
  }

  beast::tcp_stream stream_;
  Shared& shared_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

void accept(tcp::acceptor& acceptor, asio::io_context& ioc, Shared& shared) {
  acceptor.async_accept(asio::make_strand(ioc), [&](beast::error_code ec, tcp::socket socket) {
    if (!ec) {
      socket.set_option(tcp::no_delay(true));
      std::make_shared<Session>(std::move(socket), shared)->start();
    }
    accept(acceptor, ioc, shared);
  });
}

int run(int argc, char** argv) {
  CLI::App app{"canopy-floor: the hand-offs of a single charge, with none of its work"};
  std::string listen = "127.0.0.1:18790";
  std::string mode_name = "bare";
  std::size_t actor_threads = 2;
  std::size_t trees = 5000;
  std::string sync_file;
  app.add_option("--listen", listen, "loopback address:port");
  const std::map<std::string, Mode> modes{{"bare", Mode::bare},     {"actor", Mode::actor}, {"chain", Mode::chain},
                                          {"writer", Mode::writer}, {"fsync", Mode::fsync}, {"direct", Mode::direct}};
  app.add_option("--mode", mode_name, "bare | actor | chain | writer | fsync | direct")->check(CLI::IsMember(modes));
  app.add_option("--actor-threads", actor_threads, "CAF workers (Canopy's default: 2)")->check(CLI::Range(1, 64));
  app.add_option("--trees", trees, "chains of actors requests start in")->check(CLI::Range(1, 1'000'000));
  app.add_option("--sync-file", sync_file, "fsync and direct modes: the file the writer syncs (default: a temporary file)");
  CLI11_PARSE(app, argc, argv);
  const Mode mode = modes.at(mode_name);
  const auto colon = listen.rfind(':');
  beast::error_code ec;
  const auto address = asio::ip::make_address(listen.substr(0, colon == std::string::npos ? 0 : colon), ec);
  unsigned port = 0;
  const char* port_end = listen.data() + listen.size();
  const bool port_ok = colon != std::string::npos &&
                       std::from_chars(listen.data() + colon + 1, port_end, port) == std::from_chars_result{port_end, std::errc{}} &&
                       port >= 1 && port <= 65535;
  if (!port_ok || ec || !address.is_loopback()) {
    std::cerr << "canopy-floor: --listen must be a loopback address:port, got " << listen << "\n";
    return 2;
  }

  int fd = -1;
  if (mode == Mode::fsync || mode == Mode::direct) {
    std::string path = sync_file.empty() ? "/tmp/canopy-floor-XXXXXX" : sync_file;
    fd = sync_file.empty() ? ::mkstemp(path.data()) : ::open(path.c_str(), O_RDWR | O_CREAT, 0600);
    if (fd < 0) {
      std::perror("canopy-floor: --sync-file");
      return 1;
    }
    if (sync_file.empty()) ::unlink(path.c_str());  // gone when the process is
  }

  caf::actor_system_config config;
  actors::use_next_slot_scheduler(config, actor_threads);
  caf::actor_system system{config};
  Shared shared;
  shared.mode = mode;
  if (mode == Mode::writer || mode == Mode::fsync || mode == Mode::direct) {
    shared.writer = system.spawn<caf::detached>(writer, fd);
  }
  if (mode != Mode::bare && mode != Mode::direct) shared.forest = spawn_forest(system, mode, trees, shared.writer);

  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc, {address, static_cast<unsigned short>(port)}};
  accept(acceptor, ioc, shared);
  asio::signal_set signals{ioc, SIGINT, SIGTERM};
  signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
  std::cout << "canopy-floor: mode " << mode_name << " on " << listen << std::endl;
  ioc.run();  // the I/O thread: this one, as floor.sh counts it
  // Every actor done before the I/O context goes: an answer in flight posts to a session there.
  for (auto& actor : shared.forest.all) caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  if (shared.writer) caf::anon_send_exit(shared.writer, caf::exit_reason::user_shutdown);
  system.await_all_actors_done();
  if (fd >= 0) ::close(fd);
  return 0;
}

}  // namespace
}  // namespace canopy::floor

int main(int argc, char** argv) { return canopy::floor::run(argc, argv); }
