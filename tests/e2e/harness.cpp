#include "tests/e2e/harness.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <thread>

namespace canopy::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::string canopy_binary() {
  if (const char* env = std::getenv("CANOPY_BINARY")) return env;
  return CANOPY_BINARY_PATH;
}

namespace {

struct Spawned {
  int pid = -1;
  int out_fd = -1;
};

// In the child, between fork and exec: the limit, then the descriptors it starts with. Failing here
// exits 126, so a test never runs a server under a limit it did not ask for.
void apply_in_child(const FdLimit& limit) {
  const rlimit wanted{static_cast<rlim_t>(limit.soft), static_cast<rlim_t>(limit.hard)};
  if (::setrlimit(RLIMIT_NOFILE, &wanted) != 0) std::_Exit(126);
  for (unsigned i = 0; i < limit.occupied; ++i) {
    if (::open("/dev/null", O_RDONLY) < 0) std::_Exit(126);
  }
}

Spawned spawn(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
              const std::optional<FdLimit>& fd_limit = std::nullopt) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const int pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    ::close(fds[1]);
    if (fd_limit) apply_in_child(*fd_limit);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    std::string binary = canopy_binary();
    argv.push_back(binary.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    std::_Exit(127);
  }
  ::close(fds[1]);
  ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  return {pid, fds[0]};
}

// Reads what is available from `fd` into `out`, waiting at most `wait` for the first bytes.
bool read_some(int fd, std::string& out, std::chrono::milliseconds wait) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return false;
  char buf[4096];
  bool any = false;
  for (;;) {
    const auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    any = true;
  }
  return any;
}

}  // namespace

RunResult run_canopy(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                     std::chrono::seconds timeout, const std::optional<FdLimit>& fd_limit) {
  auto child = spawn(args, env, fd_limit);
  RunResult result;
  const auto until = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    read_some(child.out_fd, result.out, std::chrono::milliseconds(20));
    const int r = ::waitpid(child.pid, &status, WNOHANG);
    if (r == child.pid) break;
    if (std::chrono::steady_clock::now() > until) {
      ::kill(child.pid, SIGKILL);
      ::waitpid(child.pid, &status, 0);
      ADD_FAILURE() << "canopy did not finish in time: " << result.out;
      break;
    }
  }
  read_some(child.out_fd, result.out, std::chrono::milliseconds(0));
  ::close(child.out_fd);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

CanopyProcess::CanopyProcess(std::string data_dir, std::vector<std::string> extra_args,
                             std::map<std::string, std::string> env)
    : data_dir_(std::move(data_dir)), extra_args_(std::move(extra_args)), env_(std::move(env)) {
  env_.emplace("CANOPY_OPERATOR_TOKEN", operator_token);
}

CanopyProcess::~CanopyProcess() {
  if (pid_ > 0) kill9();
}

void CanopyProcess::start() {
  std::vector<std::string> args{"serve", "--data-dir", data_dir_, "--listen", "127.0.0.1:0"};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  auto child = spawn(args, env_, fd_limit_);
  pid_ = child.pid;
  out_fd_ = child.out_fd;
  output_.clear();
  constexpr std::string_view listening = "listening on http://127.0.0.1:";
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    read_some(out_fd_, output_, std::chrono::milliseconds(50));
    const auto at = output_.find(listening);
    const auto end = at == std::string::npos ? at : output_.find('\n', at);
    if (end != std::string::npos) {
      port_ = static_cast<std::uint16_t>(std::stoi(output_.substr(at + listening.size(), end - at - listening.size())));
      return;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL() << "canopy exited before listening: " << output_;
    }
  }
  FAIL() << "canopy did not start listening within 30 s: " << output_;
}

void CanopyProcess::drain_output(std::chrono::milliseconds wait) {
  if (out_fd_ >= 0) read_some(out_fd_, output_, wait);
}

void CanopyProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  drain_output(std::chrono::milliseconds(0));
  ::close(out_fd_);
  out_fd_ = -1;
  pid_ = -1;
}

int CanopyProcess::terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (::waitpid(pid_, &status, WNOHANG) != pid_) {
    drain_output(std::chrono::milliseconds(20));
    if (std::chrono::steady_clock::now() > until) {
      ADD_FAILURE() << "canopy did not stop within 30 s of SIGTERM";
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
  }
  drain_output(std::chrono::milliseconds(0));
  ::close(out_fd_);
  out_fd_ = -1;
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

boost::json::value HttpResult::json() const {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  return ec ? boost::json::value(nullptr) : v;
}

std::string HttpResult::error_code() const {
  const auto v = json();
  if (!v.is_object() || !v.as_object().contains("error")) return "";
  const auto& e = v.at("error");
  if (!e.is_object() || !e.as_object().contains("code") || !e.at("code").is_string()) return "";
  return std::string(e.at("code").as_string());
}

struct Client::Impl {
  asio::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  std::uint16_t port = 0;
  bool connected = false;
  beast::flat_buffer buffer;

  void connect() {
    stream.emplace(ioc);
    stream->connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    connected = true;
    buffer.clear();
  }
};

Client::Client(std::uint16_t port, std::string token) : impl_(std::make_unique<Impl>()), token_(std::move(token)) {
  impl_->port = port;
}

Client::~Client() = default;

HttpResult Client::request(const std::string& method, const std::string& target, const std::string& body,
                           const std::map<std::string, std::string>& headers) {
  // No silent resend: a request that may have reached the server is never sent twice (a grant would
  // double). A connection the server closed is reopened on the next call.
  for (int attempt = 0; attempt < 1; ++attempt) {
    try {
      if (!impl_->connected) impl_->connect();
      http::request<http::string_body> req{http::string_to_verb(method), target, 11};
      req.set(http::field::host, "127.0.0.1");
      if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
      if (!body.empty()) req.set(http::field::content_type, "application/json");
      for (const auto& [k, v] : headers) req.set(k, v);
      req.body() = body;
      req.prepare_payload();
      impl_->stream->expires_after(std::chrono::seconds(30));
      http::write(*impl_->stream, req);
      http::response_parser<http::string_body> parser;
      parser.body_limit(64u << 20);
      http::read(*impl_->stream, impl_->buffer, parser);
      auto res = parser.release();
      HttpResult out;
      out.status = res.result_int();
      out.body = std::move(res.body());
      for (const auto& field : res) {
        std::string name(field.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.headers[name] = std::string(field.value());
      }
      if (!res.keep_alive()) impl_->connected = false;
      return out;
    } catch (const std::exception&) {
      impl_->connected = false;
      throw;
    }
  }
  return {};
}

CreatedUser create_user(Client& op, const std::string& email, const std::string& name) {
  auto r = op.post("/v1/users", {{"email", email}, {"name", name}});
  EXPECT_EQ(r.status, 201u) << r.body;
  return {json_str(r.json(), {"id"}), json_str(r.json(), {"token"})};
}

CreatedUser join_by_invitation(Client& inviter, std::uint16_t port, const std::string& org, const std::string& email,
                               const std::string& role) {
  auto invited = inviter.post("/v1/orgs/" + org + "/invitations", {{"email", email}, {"role", role}});
  EXPECT_EQ(invited.status, 201u) << invited.body;
  const auto link = json_str(invited.json(), {"link"});
  Client anonymous(port, "");
  auto accepted = anonymous.post("/v1/invitations/" + link.substr(link.rfind('/') + 1) + "/accept", {{"name", role}});
  EXPECT_EQ(accepted.status, 200u) << accepted.body;
  return {json_str(accepted.json(), {"user_id"}), json_str(accepted.json(), {"token"})};
}

std::string create_root(Client& op, const std::string& owner_id, const std::string& plan, const std::string& name) {
  auto r = op.post("/v1/orgs", {{"name", name}, {"plan", plan}, {"owner_user_id", owner_id}});
  EXPECT_EQ(r.status, 201u) << r.body;
  return json_str(r.json(), {"id"});
}

std::string create_sub_org(Client& as_admin, const std::string& parent_id, const std::string& name) {
  auto r = as_admin.post("/v1/orgs/" + parent_id + "/sub-orgs", {{"name", name}});
  EXPECT_EQ(r.status, 201u) << r.body;
  return json_str(r.json(), {"id"});
}

void grant(Client& op, const std::string& org_id, std::int64_t amount_micros) {
  auto r = op.post("/v1/orgs/" + org_id + "/billing/grants", {{"amount_micros", amount_micros}, {"reason", "test"}});
  EXPECT_EQ(r.status, 201u) << r.body;
}

namespace {
const boost::json::value* walk(const boost::json::value& v, std::initializer_list<const char*> path) {
  const boost::json::value* cur = &v;
  for (const char* key : path) {
    if (!cur->is_object() || !cur->as_object().contains(key)) return nullptr;
    cur = &cur->at(key);
  }
  return cur;
}
}  // namespace

std::int64_t json_int(const boost::json::value& v, std::initializer_list<const char*> path) {
  const auto* p = walk(v, path);
  if (!p || !p->is_int64()) {
    ADD_FAILURE() << "no integer at path in " << boost::json::serialize(v);
    return 0;
  }
  return p->as_int64();
}

std::string json_str(const boost::json::value& v, std::initializer_list<const char*> path) {
  const auto* p = walk(v, path);
  if (!p || !p->is_string()) {
    ADD_FAILURE() << "no string at path in " << boost::json::serialize(v);
    return "";
  }
  return std::string(p->as_string());
}

}  // namespace canopy::test
