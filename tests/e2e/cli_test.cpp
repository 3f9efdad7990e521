// Goal: the command line does what CONTRACT.md "Command line" says. `canopy version` prints the
// version; a bad option or value exits 2 with one line naming it (flag, environment variable or
// config-file line); settings resolve as flag > CANOPY_* environment > config file > default, as shown
// by what the running server actually does (the address it listens on, whether its clock is manual,
// which operator token it accepts, where it keeps its data); `canopy check` audits a data folder; and
// with no operator token configured the first start prints a generated one, once, which goes on working.
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "tests/e2e/beast_result.hpp"
#include "tests/e2e/harness.hpp"

extern char** environ;

namespace canopy::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// ------------------------------------------------------------------------------------------------
// A server started exactly as given: no flags or environment added (the harness's CanopyProcess always
// sets --listen, --data-dir and CANOPY_OPERATOR_TOKEN, which are what these tests vary). Inherited
// CANOPY_* variables are removed so that only what a test sets is in play.
// ------------------------------------------------------------------------------------------------
class Launched {
 public:
  Launched(std::vector<std::string> args, std::map<std::string, std::string> env) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::dup2(fds[1], 2);
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<std::string> inherited;
      for (char** e = environ; *e; ++e) {
        const std::string entry(*e);
        if (entry.rfind("CANOPY_", 0) == 0) inherited.push_back(entry.substr(0, entry.find('=')));
      }
      for (const auto& name : inherited) ::unsetenv(name.c_str());
      for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
      std::string binary = canopy_binary();
      std::vector<char*> argv{binary.data()};
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(binary.c_str(), argv.data());
      std::_Exit(127);
    }
    ::close(fds[1]);
    fd_ = fds[0];
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }

  ~Launched() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }
  Launched(const Launched&) = delete;
  Launched& operator=(const Launched&) = delete;

  // Waits for "listening on http://HOST:PORT" and, with `then_ready`, for GET /readyz to answer 200
  // (so that the server is past its start-up when a test goes on to stop it); false if the process
  // exits first or 30 s pass.
  bool wait_listening(bool then_ready = true) {
    static const std::regex listening(R"(listening on http://([0-9.]+):(\d+))");
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < until) {
      read_available(50);
      std::smatch m;
      if (std::regex_search(output_, m, listening)) {
        host_ = m[1].str();
        port_ = static_cast<std::uint16_t>(std::stoi(m[2].str()));
        return !then_ready || wait_ready(until);
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        read_available(0);
        return false;
      }
    }
    return false;
  }

  // SIGTERM, then waits for the exit; returns the exit code.
  int stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) != pid_) read_available(20);
    pid_ = -1;
    read_available(0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  const std::string& output() const { return output_; }
  const std::string& host() const { return host_; }
  std::uint16_t port() const { return port_; }

 private:
  void read_available(int wait_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, wait_ms) <= 0) return;
    char buf[4096];
    for (;;) {
      const auto n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      output_.append(buf, static_cast<std::size_t>(n));
    }
  }

  bool wait_ready(std::chrono::steady_clock::time_point until);

  int pid_ = -1;
  int fd_ = -1;
  std::string output_;
  std::string host_;
  std::uint16_t port_ = 0;
};

// One request to HOST:PORT (the harness's Client only talks to 127.0.0.1).
HttpResult http_call(const std::string& host, std::uint16_t port, const std::string& method, const std::string& target,
                     const std::string& token = {}, const std::string& body = {}) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  HttpResult out;
  beast::error_code ec;
  stream.socket().connect(asio::ip::tcp::endpoint(asio::ip::make_address(host), port), ec);
  if (ec) {
    out.body = "cannot connect: " + ec.message();
    return out;
  }
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, host);
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  stream.expires_after(std::chrono::seconds(10));
  http::async_write(stream, req, [&ec](beast::error_code e, std::size_t) { ec = e; });
  ioc.run();
  ioc.restart();
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  if (!ec) http::async_read(stream, buffer, res, [&ec](beast::error_code e, std::size_t) { ec = e; });
  ioc.run();
  return beast_result(ec, res);
}

bool Launched::wait_ready(std::chrono::steady_clock::time_point until) {
  while (std::chrono::steady_clock::now() < until) {
    if (http_call(host_, port_, "GET", "/readyz").status == 200u) return true;
    read_available(20);
  }
  return false;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string trim_end(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + needle.size())) ++n;
  return n;
}

// A bad invocation: exit 2 and exactly one line, which names `what`.
void expect_refused_naming(const RunResult& r, const std::string& what) {
  EXPECT_EQ(r.exit_code, 2) << r.out;
  const auto text = trim_end(r.out);
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text.find('\n'), std::string::npos) << "more than one line:\n" << r.out;
  EXPECT_NE(text.find(what), std::string::npos) << "does not name " << what << ": " << r.out;
}

constexpr std::chrono::seconds quick{15};

// ------------------------------------------------------------------------------------------------
// canopy version
// ------------------------------------------------------------------------------------------------

TEST(Version, PrintsTheVersionAndExits0) {
  const auto r = run_canopy({"version"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(std::regex_match(r.out, std::regex(R"(canopy \d+\.\d+\.\d+\n)"))) << r.out;
}

// ------------------------------------------------------------------------------------------------
// Bad options and values
// ------------------------------------------------------------------------------------------------

TEST(BadOptions, AnUnknownFlagOrBadValueExits2WithOneLineNamingIt) {
  TempDir dir;
  struct Case {
    std::vector<std::string> args;
    std::string named;
  };
  const std::vector<Case> cases = {
      {{"--frobnicate"}, "--frobnicate"},
      {{"--listen", "nonsense"}, "--listen"},
      {{"--listen", "127.0.0.1:99999"}, "--listen"},
      {{"--listen", "127.0.0.1:"}, "--listen"},
      {{"--listen", ":8080"}, "--listen"},
      {{"--clock", "sometimes"}, "--clock"},
      {{"--clock", "Manual"}, "--clock"},
      {{"--max-depth", "99"}, "--max-depth"},
      {{"--max-depth", "0"}, "--max-depth"},
      {{"--max-depth", "-1"}, "--max-depth"},
      {{"--max-depth", "2.5"}, "--max-depth"},
      {{"--body-limit-bytes", "abc"}, "--body-limit-bytes"},
      {{"--body-limit-bytes", "100"}, "--body-limit-bytes"},
      {{"--body-limit-bytes", "1MiB"}, "--body-limit-bytes"},
      {{"--body-limit-bytes", "99999999999999999999999"}, "--body-limit-bytes"},
      {{"--public-url", "ftp://example.com"}, "--public-url"},
      {{"--smtp-url", "http://mail.example.com"}, "--smtp-url"},
      {{"--dns-server", "no-port"}, "--dns-server"},
      {{"--data-dir", ""}, "--data-dir"},
      {{"--commit-window-us", "-1"}, "--commit-window-us"},
      {{"--commit-window-us", "100001"}, "--commit-window-us"},
      {{"--checkpoint-interval-ms", "0"}, "--checkpoint-interval-ms"},
      {{"--checkpoint-interval-ms", "600001"}, "--checkpoint-interval-ms"},
      {{"--scheduler-policy", "fair"}, "--scheduler-policy"},
      // A token on the command line would show in `ps`: there is no such flag.
      {{"--operator-token", "secret"}, "--operator-token"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args{"serve", "--data-dir", dir.str("data")};
    if (c.args.front() != "--listen") args.insert(args.end(), {"--listen", "127.0.0.1:0"});
    args.insert(args.end(), c.args.begin(), c.args.end());
    std::string shown;
    for (const auto& a : c.args) shown += a + " ";
    SCOPED_TRACE(shown);
    expect_refused_naming(run_canopy(args, {}, quick), c.named);
  }
  EXPECT_FALSE(std::filesystem::exists(dir.str("data"))) << "a refused start created the data folder";
}

TEST(BadOptions, AFlagWithoutItsValueExits2NamingIt) {
  TempDir dir;
  expect_refused_naming(run_canopy({"serve", "--data-dir", dir.str("data"), "--listen"}, {}, quick), "--listen");
}

TEST(BadOptions, AnUnknownCommandExits2NamingIt) {
  expect_refused_naming(run_canopy({"frobnicate"}, {}, quick), "frobnicate");
}

TEST(BadOptions, NoCommandExits2) {
  const auto r = run_canopy({}, {}, quick);
  EXPECT_EQ(r.exit_code, 2) << r.out;
}

TEST(BadOptions, ABadValueInTheEnvironmentExits2NamingTheVariable) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"CANOPY_CLOCK", "sometimes"}, {"CANOPY_MAX_DEPTH", "99"},    {"CANOPY_BODY_LIMIT_BYTES", "abc"},
      {"CANOPY_LISTEN", "nonsense"}, {"CANOPY_OPERATOR_TOKEN", ""}, {"CANOPY_ALLOW_PRIVATE_WEBHOOKS", "perhaps"},
  };
  for (const auto& [name, value] : cases) {
    SCOPED_TRACE(name + "=" + value);
    // A flag would override the variable (and then it does not matter): none is given for it.
    std::vector<std::string> args{"serve", "--data-dir", dir.str("data")};
    if (name != "CANOPY_LISTEN") args.insert(args.end(), {"--listen", "127.0.0.1:0"});
    expect_refused_naming(run_canopy(args, {{name, value}}, quick), name);
  }
}

TEST(BadOptions, AnUnknownKeyInTheConfigFileExits2NamingFileAndLine) {
  TempDir dir;
  const auto config = dir.str("canopy.conf");
  write_file(config, "# Canopy\nclock = manual\ncolour = blue\n");
  const auto r =
      run_canopy({"serve", "--config", config, "--data-dir", dir.str("data"), "--listen", "127.0.0.1:0"}, {}, quick);
  expect_refused_naming(r, config + ":3");
  EXPECT_NE(r.out.find("colour"), std::string::npos) << r.out;
}

TEST(BadOptions, AConfigLineWithoutAValueExits2NamingFileAndLine) {
  TempDir dir;
  const auto config = dir.str("canopy.conf");
  write_file(config, "clock = manual\n\n# listen next\nlisten 127.0.0.1:0\n");
  expect_refused_naming(
      run_canopy({"serve", "--config", config, "--data-dir", dir.str("data"), "--listen", "127.0.0.1:0"}, {}, quick),
      config + ":4");
}

TEST(BadOptions, ABadValueInTheConfigFileExits2NamingFileAndKey) {
  TempDir dir;
  const auto config = dir.str("canopy.conf");
  write_file(config, "max_depth = 99\n");
  const auto r =
      run_canopy({"serve", "--config", config, "--data-dir", dir.str("data"), "--listen", "127.0.0.1:0"}, {}, quick);
  expect_refused_naming(r, config);
  EXPECT_NE(r.out.find("max_depth"), std::string::npos) << r.out;
}

TEST(BadOptions, AMissingConfigFileExits2NamingIt) {
  TempDir dir;
  const auto config = dir.str("missing.conf");
  expect_refused_naming(
      run_canopy({"serve", "--config", config, "--data-dir", dir.str("data"), "--listen", "127.0.0.1:0"}, {}, quick),
      config);
}

// ------------------------------------------------------------------------------------------------
// Precedence: flag > environment > config file > default
// ------------------------------------------------------------------------------------------------

// The address a server given these settings listens on (it must answer /healthz there).
std::string listen_host_of(TempDir& dir, std::vector<std::string> extra_args, std::map<std::string, std::string> env) {
  std::vector<std::string> args{"serve", "--data-dir", dir.str("data")};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  env.emplace("CANOPY_OPERATOR_TOKEN", operator_token);
  Launched server(args, env);
  if (!server.wait_listening()) {
    ADD_FAILURE() << "did not start: " << server.output();
    return "";
  }
  const auto health = http_call(server.host(), server.port(), "GET", "/healthz");
  EXPECT_EQ(health.status, 200u) << "not reachable at " << server.host() << ":" << server.port() << ": " << health.body;
  EXPECT_EQ(server.stop(), 0) << server.output();
  return server.host();
}

TEST(Precedence, AFlagBeatsTheEnvironmentAndTheFile) {
  TempDir dir;
  write_file(dir.str("canopy.conf"), "listen = 127.0.0.4:0\n");
  EXPECT_EQ(listen_host_of(dir, {"--config", dir.str("canopy.conf"), "--listen", "127.0.0.2:0"},
                           {{"CANOPY_LISTEN", "127.0.0.3:0"}}),
            "127.0.0.2");
}

TEST(Precedence, TheEnvironmentBeatsTheFile) {
  TempDir dir;
  write_file(dir.str("canopy.conf"), "listen = 127.0.0.4:0\n");
  EXPECT_EQ(listen_host_of(dir, {"--config", dir.str("canopy.conf")}, {{"CANOPY_LISTEN", "127.0.0.3:0"}}), "127.0.0.3");
}

TEST(Precedence, TheFileBeatsTheDefault) {
  TempDir dir;
  write_file(dir.str("canopy.conf"), "# where to listen\nlisten = \"127.0.0.4:0\"  # quoted, with a comment\n");
  EXPECT_EQ(listen_host_of(dir, {"--config", dir.str("canopy.conf")}, {}), "127.0.0.4");
}

// Whether a server with these settings runs the manual clock: POST /v1/admin/clock is 200 with it and
// 404 without it.
unsigned clock_status(TempDir& dir, std::vector<std::string> extra_args, std::map<std::string, std::string> env) {
  std::vector<std::string> args{"serve", "--data-dir", dir.str("data"), "--listen", "127.0.0.1:0"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  env.emplace("CANOPY_OPERATOR_TOKEN", operator_token);
  Launched server(args, env);
  if (!server.wait_listening()) {
    ADD_FAILURE() << "did not start: " << server.output();
    return 0;
  }
  Client op(server.port());
  const auto r = op.post("/v1/admin/clock", {{"now", "2041-01-01T00:00:00Z"}});
  if (r.status == 404u) {
    EXPECT_EQ(r.error_code(), "not_found") << r.body;
  }
  server.stop();
  return r.status;
}

TEST(Precedence, ClockManualInTheFileButSystemInTheEnvironmentIsSystem) {
  TempDir dir;
  write_file(dir.str("canopy.conf"), "clock = manual\n");
  EXPECT_EQ(clock_status(dir, {"--config", dir.str("canopy.conf")}, {{"CANOPY_CLOCK", "system"}}), 404u);
}

TEST(Precedence, ClockSystemInTheFileButManualInTheEnvironmentIsManual) {
  TempDir dir;
  write_file(dir.str("canopy.conf"), "clock = system\n");
  EXPECT_EQ(clock_status(dir, {"--config", dir.str("canopy.conf")}, {{"CANOPY_CLOCK", "manual"}}), 200u);
}

TEST(Precedence, ClockFlagBeatsTheEnvironment) {
  TempDir manual_by_flag;
  EXPECT_EQ(clock_status(manual_by_flag, {"--clock", "manual"}, {{"CANOPY_CLOCK", "system"}}), 200u);
  TempDir system_by_flag;
  EXPECT_EQ(clock_status(system_by_flag, {"--clock", "system"}, {{"CANOPY_CLOCK", "manual"}}), 404u);
}

TEST(Precedence, ClockFromTheFileBeatsTheDefault) {
  TempDir dir;
  write_file(dir.str("canopy.conf"), "clock = manual\n");
  EXPECT_EQ(clock_status(dir, {"--config", dir.str("canopy.conf")}, {}), 200u);
}

TEST(Precedence, TheDefaultClockIsTheSystemClock) {
  TempDir dir;
  EXPECT_EQ(clock_status(dir, {}, {}), 404u);
}

TEST(Precedence, CanopyConfigNamesTheFileAndTheFlagBeatsIt) {
  TempDir dir;
  write_file(dir.str("manual.conf"), "clock = manual\n");
  write_file(dir.str("system.conf"), "clock = system\n");
  EXPECT_EQ(clock_status(dir, {}, {{"CANOPY_CONFIG", dir.str("manual.conf")}}), 200u);
  TempDir other;
  EXPECT_EQ(clock_status(other, {"--config", dir.str("system.conf")}, {{"CANOPY_CONFIG", dir.str("manual.conf")}}),
            404u);
}

TEST(Precedence, TheOperatorTokenComesFromTheEnvironmentBeforeTheFile) {
  TempDir dir;
  write_file(dir.str("canopy.conf"), "operator_token = from-the-file\n");
  {
    Launched server(
        {"serve", "--config", dir.str("canopy.conf"), "--data-dir", dir.str("data"), "--listen", "127.0.0.1:0"}, {});
    ASSERT_TRUE(server.wait_listening()) << server.output();
    EXPECT_EQ(server.output().find("operator token"), std::string::npos) << "a configured token is never generated";
    Client file_token(server.port(), "from-the-file");
    EXPECT_EQ(file_token.post("/v1/users", {{"email", "a@example.com"}, {"name", "A"}}).status, 201u);
    server.stop();
  }
  Launched server(
      {"serve", "--config", dir.str("canopy.conf"), "--data-dir", dir.str("data"), "--listen", "127.0.0.1:0"},
      {{"CANOPY_OPERATOR_TOKEN", "from-the-environment"}});
  ASSERT_TRUE(server.wait_listening()) << server.output();
  Client env_token(server.port(), "from-the-environment");
  EXPECT_EQ(env_token.post("/v1/users", {{"email", "b@example.com"}, {"name", "B"}}).status, 201u);
  Client file_token(server.port(), "from-the-file");
  EXPECT_EQ(file_token.post("/v1/users", {{"email", "c@example.com"}, {"name", "C"}}).status, 401u);
}

TEST(Precedence, TheDataDirComesFromTheFlagBeforeTheEnvironment) {
  TempDir dir;
  {
    Launched server({"serve", "--listen", "127.0.0.1:0"},
                    {{"CANOPY_DATA_DIR", dir.str("from-env")}, {"CANOPY_OPERATOR_TOKEN", operator_token}});
    ASSERT_TRUE(server.wait_listening()) << server.output();
    server.stop();
  }
  EXPECT_TRUE(std::filesystem::exists(dir.str("from-env"))) << "CANOPY_DATA_DIR was not used";
  Launched server({"serve", "--listen", "127.0.0.1:0", "--data-dir", dir.str("from-flag")},
                  {{"CANOPY_DATA_DIR", dir.str("from-env-2")}, {"CANOPY_OPERATOR_TOKEN", operator_token}});
  ASSERT_TRUE(server.wait_listening()) << server.output();
  server.stop();
  EXPECT_TRUE(std::filesystem::exists(dir.str("from-flag")));
  EXPECT_FALSE(std::filesystem::exists(dir.str("from-env-2"))) << "the environment beat the flag";
}

// ------------------------------------------------------------------------------------------------
// canopy check
// ------------------------------------------------------------------------------------------------

TEST(Check, AGoodDataFolderExits0) {
  TempDir dir;
  {
    CanopyProcess server(dir.str("data"));
    server.start();
    Client op(server.port());
    const auto owner = create_user(op, "owner@example.com");
    const auto root = create_root(op, owner.id);
    Client admin(server.port(), owner.token);
    const auto child = create_sub_org(admin, root, "Child");
    grant(op, root, 3'000'000);
    ASSERT_EQ(admin
                  .post("/v1/orgs/" + child + "/usage",
                        {{"id", "e1"}, {"type", "assistants.reply"}, {"quantity", 1}, {"cost_micros", 250'000}})
                  .status,
              200u);
    EXPECT_EQ(server.terminate(), 0);
  }
  const auto r = run_canopy({"check", dir.str("data")}, {}, quick);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("consistent"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("DIFFERENCE"), std::string::npos) << r.out;
}

TEST(Check, AMissingDataFolderExitsNonZeroAndIsNotCreated) {
  TempDir dir;
  const auto missing = dir.str("no-such-folder");
  const auto r = run_canopy({"check", missing}, {}, quick);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(missing), std::string::npos) << "does not name the folder: " << r.out;
  EXPECT_FALSE(std::filesystem::exists(missing));
}

TEST(Check, AnEmptyFolderIsNotADataFolder) {
  TempDir dir;
  std::filesystem::create_directory(dir.str("empty"));
  const auto r = run_canopy({"check", dir.str("empty")}, {}, quick);
  EXPECT_NE(r.exit_code, 0) << r.out;
}

TEST(Check, WithoutAFolderExits2) { expect_refused_naming(run_canopy({"check"}, {}, quick), "DATA_DIR"); }

// ------------------------------------------------------------------------------------------------
// canopy serve: stopping
// ------------------------------------------------------------------------------------------------

TEST(Serve, ASigtermRightAfterTheListeningLineStopsCleanly) {
  for (int attempt = 0; attempt < 10; ++attempt) {
    SCOPED_TRACE("attempt " + std::to_string(attempt));
    TempDir dir;
    Launched server({"serve", "--data-dir", dir.str("data"), "--listen", "127.0.0.1:0"},
                    {{"CANOPY_OPERATOR_TOKEN", operator_token}});
    ASSERT_TRUE(server.wait_listening(/*then_ready=*/false)) << server.output();
    ASSERT_EQ(server.stop(), 0) << server.output();
    EXPECT_NE(server.output().find("stopped cleanly"), std::string::npos) << server.output();
  }
}

TEST(Serve, ASigtermOnceServingStopsCleanly) {
  TempDir dir;
  Launched server({"serve", "--data-dir", dir.str("data"), "--listen", "127.0.0.1:0"},
                  {{"CANOPY_OPERATOR_TOKEN", operator_token}});
  ASSERT_TRUE(server.wait_listening()) << server.output();
  EXPECT_EQ(server.stop(), 0) << server.output();
  EXPECT_NE(server.output().find("stopped cleanly"), std::string::npos) << server.output();
}

// ------------------------------------------------------------------------------------------------
// The generated operator token
// ------------------------------------------------------------------------------------------------

// The token from a line like "canopy: operator token (shown once, stored hashed): co_…".
std::string printed_token(const std::string& output) {
  static const std::regex line(R"(operator token[^:\n]*: (\S+))");
  std::smatch m;
  return std::regex_search(output, m, line) ? m[1].str() : "";
}

std::vector<std::string> start_args(const TempDir& dir) {
  return {"serve", "--data-dir", dir.str("data"), "--listen", "127.0.0.1:0"};
}

TEST(GeneratedToken, TheFirstStartPrintsATokenOnceAndItWorks) {
  TempDir dir;
  Launched server(start_args(dir), {});
  ASSERT_TRUE(server.wait_listening()) << server.output();
  EXPECT_EQ(count_of(server.output(), "operator token"), 1u) << server.output();
  const auto token = printed_token(server.output());
  ASSERT_FALSE(token.empty()) << server.output();
  Client op(server.port(), token);
  const auto r = op.post("/v1/users", {{"email", "first@example.com"}, {"name", "First"}});
  EXPECT_EQ(r.status, 201u) << r.body;
  Client guess(server.port(), token + "x");
  EXPECT_EQ(guess.post("/v1/users", {{"email", "second@example.com"}, {"name", "Second"}}).status, 401u);
}

TEST(GeneratedToken, TheSecondStartDoesNotPrintItAndTheOldTokenStillWorks) {
  TempDir dir;
  std::string token;
  {
    Launched first(start_args(dir), {});
    ASSERT_TRUE(first.wait_listening()) << first.output();
    token = printed_token(first.output());
    ASSERT_FALSE(token.empty()) << first.output();
    EXPECT_EQ(first.stop(), 0) << first.output();
  }
  Launched second(start_args(dir), {});
  ASSERT_TRUE(second.wait_listening()) << second.output();
  EXPECT_EQ(second.output().find("operator token"), std::string::npos) << second.output();
  EXPECT_EQ(second.output().find(token), std::string::npos) << "the token was printed again";
  Client op(second.port(), token);
  EXPECT_EQ(op.post("/v1/users", {{"email", "later@example.com"}, {"name", "Later"}}).status, 201u);
}

TEST(GeneratedToken, TheTokenSurvivesAKill9RightAfterItIsPrinted) {
  TempDir dir;
  std::string token;
  {
    Launched first(start_args(dir), {});
    ASSERT_TRUE(first.wait_listening()) << first.output();
    token = printed_token(first.output());
    ASSERT_FALSE(token.empty()) << first.output();
  }  // SIGKILL: nothing gets a chance to be flushed on the way out
  Launched second(start_args(dir), {});
  ASSERT_TRUE(second.wait_listening()) << second.output();
  EXPECT_EQ(second.output().find("operator token"), std::string::npos) << second.output();
  Client op(second.port(), token);
  EXPECT_EQ(op.post("/v1/users", {{"email", "later@example.com"}, {"name", "Later"}}).status, 201u);
}

TEST(GeneratedToken, IsStoredOnlyAsAHash) {
  TempDir dir;
  std::string token;
  {
    Launched server(start_args(dir), {});
    ASSERT_TRUE(server.wait_listening()) << server.output();
    token = printed_token(server.output());
    ASSERT_FALSE(token.empty()) << server.output();
    EXPECT_EQ(server.stop(), 0) << server.output();
  }
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.str("data"))) {
    if (!entry.is_regular_file()) continue;
    ++files;
    EXPECT_EQ(read_file(entry.path()).find(token), std::string::npos) << entry.path() << " holds the token";
  }
  EXPECT_GT(files, 0u);
}

TEST(GeneratedToken, EachDataFolderGetsItsOwnToken) {
  TempDir a;
  TempDir b;
  Launched first(start_args(a), {});
  Launched second(start_args(b), {});
  ASSERT_TRUE(first.wait_listening()) << first.output();
  ASSERT_TRUE(second.wait_listening()) << second.output();
  const auto token_a = printed_token(first.output());
  const auto token_b = printed_token(second.output());
  ASSERT_FALSE(token_a.empty());
  ASSERT_FALSE(token_b.empty());
  EXPECT_NE(token_a, token_b);
  Client wrong(second.port(), token_a);
  EXPECT_EQ(wrong.post("/v1/users", {{"email", "x@example.com"}, {"name", "X"}}).status, 401u);
}

}  // namespace
}  // namespace canopy::test
