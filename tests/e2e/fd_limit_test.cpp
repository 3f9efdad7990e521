// Goal: the server stays responsive at its file-descriptor limit (docs/operations.md, max_connections).
//   - at start it raises its soft RLIMIT_NOFILE as far as --max-connections needs, up to the hard limit;
//   - where the hard limit is lower, it serves fewer connections, says so in one line at start, and
//     closes connections past that cap at once, with descriptors to spare;
//   - if descriptors run out anyway (here: held by something else in the process), accept pauses and
//     retries instead of spinning, counts it in /metrics, and takes the waiting connection once one is
//     freed;
//   - with a limit too low for even the least cap, it refuses to start and says what to raise it to.
// Loopback only; every loop is bounded in count and time.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/e2e/harness.hpp"

namespace canopy::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t low_limit = 256;

// A raw loopback TCP connection that asks for GET /healthz or GET /metrics and keeps the connection
// open afterwards (HTTP keep-alive). CLOEXEC, so a server started later never inherits it.
class RawConnection {
 public:
  enum class Outcome {
    answered,  // 200
    refused,   // another status
    closed,    // closed by the server (or never connected)
    silent,    // nothing within the wait
  };

  explicit RawConnection(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) return;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0) return;
    // Loopback connects complete in the kernel (the backlog), whether the server accepts or not.
    pollfd p{fd_, POLLOUT, 0};
    int error = 0;
    socklen_t size = sizeof error;
    if (errno != EINPROGRESS || ::poll(&p, 1, 2000) != 1 || ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &size) != 0 ||
        error != 0) {
      close();
    }
  }
  ~RawConnection() { close(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool open() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Sends GET `target` (no answer awaited).
  bool send_get(const std::string& target) {
    const std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                                operator_token + "\r\n\r\n";
    return ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size());
  }

  // Waits at most `wait` for a whole answer (status line, headers, Content-Length body), or for the
  // server to close the connection.
  Outcome await_answer(std::chrono::milliseconds wait, std::string* body = nullptr) {
    std::string in;
    const auto until = Clock::now() + wait;
    for (;;) {
      const auto head_end = in.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        const std::size_t length = content_length(in.substr(0, head_end));
        if (in.size() >= head_end + 4 + length) {
          if (body) *body = in.substr(head_end + 4, length);
          return in.rfind("HTTP/1.1 200", 0) == 0 ? Outcome::answered : Outcome::refused;
        }
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (left <= 0ms) return Outcome::silent;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) != 1) return Outcome::silent;
      char buffer[4096];
      const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return Outcome::closed;  // EOF or reset: the server closed it
      in.append(buffer, static_cast<std::size_t>(n));
    }
  }

  Outcome get(const std::string& target, std::chrono::milliseconds wait, std::string* body = nullptr) {
    if (!open() || !send_get(target)) return Outcome::closed;
    return await_answer(wait, body);
  }

 private:
  static std::size_t content_length(const std::string& head) {
    static const std::regex header(R"(\r\n[Cc]ontent-[Ll]ength:\s*(\d+))");
    std::smatch m;
    return std::regex_search(head, m, header) ? std::stoul(m[1].str()) : 0;
  }

  int fd_ = -1;
};

// CPU time (user + system) the process has used so far, from /proc/PID/stat.
std::chrono::milliseconds cpu_time(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  // Fields after the command name (which may hold spaces) in parentheses; utime and stime are
  // fields 14 and 15, i.e. the 12th and 13th after it.
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  long long utime = 0;
  long long stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  const long ticks = ::sysconf(_SC_CLK_TCK);
  return std::chrono::milliseconds((utime + stime) * 1000 / ticks);
}

// The soft and hard "Max open files" of /proc/PID/limits.
std::pair<std::uint64_t, std::uint64_t> open_files_limit(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream fields(line.substr(std::string("Max open files").size()));
    std::uint64_t soft = 0;
    std::uint64_t hard = 0;
    fields >> soft >> hard;
    return {soft, hard};
  }
  return {0, 0};
}

// The value of an unlabelled metric in a /metrics body, or -1.
long long metric(const std::string& body, const std::string& name) {
  const auto at = body.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stoll(body.substr(at + name.size() + 2));
}

struct StartLine {
  std::uint64_t configured = 0;
  std::uint64_t needed = 0;
  std::uint64_t limit = 0;
  std::uint64_t serving = 0;
};

// The "--max-connections … serving at most N connections" line of the server's output, if there is one.
std::optional<StartLine> start_line(const std::string& output) {
  static const std::regex line(
      R"(canopy: --max-connections (\d+) needs (\d+) file descriptors but the limit is (\d+); serving at most (\d+) connections\n)");
  std::smatch m;
  if (!std::regex_search(output, m, line)) return std::nullopt;
  return StartLine{std::stoull(m[1].str()), std::stoull(m[2].str()), std::stoull(m[3].str()), std::stoull(m[4].str())};
}

class FileDescriptors : public ::testing::Test {
 protected:
  void SetUp() override {
    rlimit own{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &own), 0);
    if (own.rlim_max < 4096) GTEST_SKIP() << "the test process's hard limit is below 4096: " << own.rlim_max;
  }

  void start(FdLimit limit, std::vector<std::string> args = {}) {
    server_ = std::make_unique<CanopyProcess>(dir_.str("data"), std::move(args));
    server_->set_fd_limit(limit);
    server_->start();
  }

  // Opens connections one at a time, each asking for /healthz, keeping those the server answers, until
  // one is not answered (closed at once, or left waiting for `silent_wait`) or `most` are open.
  // Returns the one not answered (or nullptr).
  std::unique_ptr<RawConnection> fill(std::size_t most, std::chrono::milliseconds silent_wait,
                                      RawConnection::Outcome& last) {
    const auto until = Clock::now() + 60s;
    while (held_.size() < most && Clock::now() < until) {
      auto c = std::make_unique<RawConnection>(server_->port());
      last = c->get("/healthz", silent_wait);
      if (last != RawConnection::Outcome::answered) return c;
      held_.push_back(std::move(c));
    }
    return nullptr;
  }

  // GET /metrics over a connection the server already holds (a new one may not be accepted).
  std::string metrics_over_held() {
    std::string body;
    EXPECT_FALSE(held_.empty());
    if (held_.empty()) return body;
    EXPECT_EQ(held_.front()->get("/metrics", 5s, &body), RawConnection::Outcome::answered);
    return body;
  }

  // A new connection is answered /healthz within 10 s (the server notices closed connections on its own time).
  bool new_client_answered() {
    const auto until = Clock::now() + 10s;
    while (Clock::now() < until) {
      RawConnection c(server_->port());
      if (c.get("/healthz", 2s) == RawConnection::Outcome::answered) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  TempDir dir_;
  std::unique_ptr<CanopyProcess> server_;
  std::vector<std::unique_ptr<RawConnection>> held_;
};

TEST_F(FileDescriptors, TheSoftLimitIsRaisedAsFarAsTheConnectionCapNeeds) {
  start({low_limit, 4096, 0}, {"--max-connections", "1000"});
  ASSERT_TRUE(server_->running());
  const auto [soft, hard] = open_files_limit(server_->pid());
  EXPECT_EQ(hard, 4096u) << "the hard limit is left alone";
  EXPECT_GT(soft, 1000u) << "the soft limit was not raised";
  EXPECT_LT(soft, 4096u) << "raised further than 1,000 connections need";
  EXPECT_FALSE(start_line(server_->output())) << "every connection fits: nothing to say\n" << server_->output();
}

TEST_F(FileDescriptors, AHardLimitBelowTheCapServesFewerConnectionsAndClosesTheRestAtOnceWithoutSpinning) {
  start({low_limit, low_limit, 0});  // the default --max-connections (20,000) cannot fit
  ASSERT_TRUE(server_->running());
  const auto line = start_line(server_->output());
  ASSERT_TRUE(line) << "no 'serving at most' line at start:\n" << server_->output();
  EXPECT_EQ(line->configured, 20000u);
  EXPECT_EQ(line->limit, low_limit);
  ASSERT_GT(line->needed, line->configured);
  const std::uint64_t reserve = line->needed - line->configured;
  EXPECT_EQ(line->serving, low_limit - reserve) << "the cap leaves exactly the reserve free";
  EXPECT_EQ(open_files_limit(server_->pid()).first, low_limit);

  // Exactly `serving` connections are kept; the next one is closed at once.
  RawConnection::Outcome last = RawConnection::Outcome::answered;
  const auto refused = fill(line->serving + 20, 5s, last);
  EXPECT_EQ(held_.size(), line->serving) << "connections answered before the first refusal";
  ASSERT_TRUE(refused);
  EXPECT_EQ(last, RawConnection::Outcome::closed) << "past the cap a connection must be closed, not left waiting";
  for (int i = 0; i < 10; ++i) {
    RawConnection more(server_->port());
    EXPECT_EQ(more.get("/healthz", 5s), RawConnection::Outcome::closed) << "connection " << i << " past the cap";
  }
  EXPECT_GE(metric(metrics_over_held(), "canopy_connections_refused_total"), 11);

  // Full, it does nothing while nothing happens: well under half a core over a second.
  const auto cpu_before = cpu_time(server_->pid());
  std::this_thread::sleep_for(1s);  // the measuring window itself: nothing to wait on
  const auto cpu_used = cpu_time(server_->pid()) - cpu_before;
  EXPECT_LT(cpu_used, 500ms) << "the server spun while full";

  // Connections closed by their clients free room for new ones.
  held_.clear();
  EXPECT_TRUE(new_client_answered()) << "no room after the held connections closed";
  EXPECT_EQ(server_->terminate(), 0);
}

// Descriptors held by something else (here: inherited /dev/null) make accept fail with EMFILE before
// the connection cap is reached: the case the cap alone cannot rule out.
TEST_F(FileDescriptors, OutOfDescriptorsAcceptPausesInsteadOfSpinningAndResumesWhenOneIsFreed) {
  constexpr unsigned occupied = 160;  // leaves room for a few dozen connections below the 128 cap
  start({low_limit, low_limit, occupied});
  ASSERT_TRUE(server_->running());
  const auto line = start_line(server_->output());
  ASSERT_TRUE(line) << server_->output();

  // Connections are answered until descriptors run out; then one waits in the backlog, unanswered.
  RawConnection::Outcome last = RawConnection::Outcome::answered;
  auto waiting = fill(line->serving, 5s, last);
  ASSERT_TRUE(waiting) << "descriptors never ran out: " << held_.size() << " connections held";
  ASSERT_EQ(last, RawConnection::Outcome::silent) << "out of descriptors, a new connection must wait, not be closed";
  ASSERT_GE(held_.size(), 2u) << "no descriptors to spare for the test's own connections";
  EXPECT_LT(held_.size(), line->serving) << "the cap, not the descriptors, stopped it";

  const auto body_before = metrics_over_held();
  const auto pauses_before = metric(body_before, "canopy_accept_pauses_total");
  EXPECT_GE(pauses_before, 1) << body_before;
  EXPECT_EQ(metric(body_before, "canopy_connections_refused_total"), 0) << "nothing was past the cap";

  // While the connection waits, accept is retried a few times a second, not in a busy loop.
  const auto cpu_before = cpu_time(server_->pid());
  const auto at = Clock::now();
  std::this_thread::sleep_for(1s);  // the measuring window itself: nothing to wait on
  const auto cpu_used = cpu_time(server_->pid()) - cpu_before;
  const auto pauses = metric(metrics_over_held(), "canopy_accept_pauses_total") - pauses_before;
  const auto window_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - at).count();
  EXPECT_LT(cpu_used, 500ms) << "the acceptor spun while out of descriptors";
  EXPECT_GE(pauses, 1) << "accept stopped retrying";
  EXPECT_LE(pauses, 2 * window_ms / 50 + 5) << "accept retried far more often than every 50-100 ms";

  // One descriptor freed: the waiting connection is taken and answered.
  held_.pop_back();
  EXPECT_EQ(waiting->await_answer(5s), RawConnection::Outcome::answered) << "the waiting connection was never taken";
  // The clients leave, and once the server has closed their sockets it stops cleanly. (It stops
  // cleanly while out of descriptors too, but not under UBSan: its vptr check probes memory through a
  // pipe, and with no descriptor to spare it reports the probe's failure as an invalid vptr.)
  held_.resize(1);
  waiting.reset();
  const auto until = Clock::now() + 10s;
  while (metric(metrics_over_held(), "canopy_connections_open") > 1 && Clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  held_.clear();
  EXPECT_EQ(server_->terminate(), 0) << server_->output();
}

TEST_F(FileDescriptors, ALimitTooLowForEvenTheLeastCapRefusesToStartAndSaysWhatToRaiseItTo) {
  const auto r = run_canopy({"serve", "--data-dir", dir_.str("data"), "--listen", "127.0.0.1:0"},
                            {{"CANOPY_OPERATOR_TOKEN", operator_token}}, 30s, FdLimit{64, 64, 0});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("the limit is 64"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("raise it (ulimit -n) to at least"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("listening on"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace canopy::test
