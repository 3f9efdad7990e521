// End-to-end test harness: starts the real `canopy` binary on an ephemeral loopback port with a data
// folder of its own, and talks HTTP to it over real sockets.
//
// Nothing is shared between tests: each makes its own TempDir and CanopyProcess. Waiting is on
// conditions (the "listening on" line, a process exit), never on fixed sleeps.
#pragma once

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/temp_dir.hpp"

namespace canopy::test {

inline constexpr const char* operator_token = "test-operator-token";


// Path of the canopy binary under test (set by CMake).
std::string canopy_binary();

// A file-descriptor limit for the child, applied with setrlimit after fork and before exec, and
// descriptors the child starts with already open (/dev/null, inherited through exec), as if something
// else in the process held them: lets a test run the server out of descriptors without opening
// thousands of connections.
struct FdLimit {
  std::uint64_t soft = 0;
  std::uint64_t hard = 0;
  unsigned occupied = 0;
};

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};
// Runs the binary to completion with `args` (and extra environment), at most `timeout`.
RunResult run_canopy(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
                     std::chrono::seconds timeout = std::chrono::seconds(60),
                     const std::optional<FdLimit>& fd_limit = std::nullopt);

class CanopyProcess {
 public:
  // `extra_args` go after `serve --data-dir DIR --listen 127.0.0.1:0`.
  explicit CanopyProcess(std::string data_dir, std::vector<std::string> extra_args = {},
                         std::map<std::string, std::string> env = {});
  ~CanopyProcess();  // SIGKILLs a process still running
  CanopyProcess(const CanopyProcess&) = delete;
  CanopyProcess& operator=(const CanopyProcess&) = delete;

  // Applies to the next start().
  void set_fd_limit(const FdLimit& limit) { fd_limit_ = limit; }
  // Starts the server and waits for it to listen (fails the test after 30 s).
  void start();
  void kill9();
  // SIGTERM, then waits for the exit; returns the exit code.
  int terminate();
  bool running() const { return pid_ > 0; }
  int pid() const { return pid_; }  // -1 when not running
  std::uint16_t port() const { return port_; }
  const std::string& output() const { return output_; }

 private:
  void drain_output(std::chrono::milliseconds wait);

  std::string data_dir_;
  std::vector<std::string> extra_args_;
  std::map<std::string, std::string> env_;
  std::optional<FdLimit> fd_limit_;
  int pid_ = -1;
  int out_fd_ = -1;
  std::uint16_t port_ = 0;
  std::string output_;
};

struct HttpResult {
  unsigned status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  boost::json::value json() const;             // parses body; null on failure
  // error.code of an error body, or "" if there is none.
  std::string error_code() const;
};

// A keep-alive HTTP/1.1 client on one connection (reconnects if the server closed it).
class Client {
 public:
  explicit Client(std::uint16_t port, std::string token = operator_token);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void set_token(std::string token) { token_ = std::move(token); }
  HttpResult request(const std::string& method, const std::string& target, const std::string& body = {},
                     const std::map<std::string, std::string>& headers = {});
  HttpResult get(const std::string& target) { return request("GET", target); }
  HttpResult post(const std::string& target, const boost::json::value& body,
                  const std::map<std::string, std::string>& headers = {}) {
    return request("POST", target, boost::json::serialize(body), headers);
  }
  HttpResult put(const std::string& target, const boost::json::value& body) {
    return request("PUT", target, boost::json::serialize(body));
  }
  HttpResult patch(const std::string& target, const boost::json::value& body) {
    return request("PATCH", target, boost::json::serialize(body));
  }
  HttpResult del(const std::string& target) { return request("DELETE", target); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string token_;
};

// Shortcuts for building the usual fixtures through the public API (operator client).
struct CreatedUser {
  std::string id;
  std::string token;
};
CreatedUser create_user(Client& op, const std::string& email, const std::string& name = "Test User");
// `inviter` invites `email` into `org` as `role`; the link is accepted without a token: a new user,
// a direct member of `org` only.
CreatedUser join_by_invitation(Client& inviter, std::uint16_t port, const std::string& org, const std::string& email,
                               const std::string& role);
std::string create_root(Client& op, const std::string& owner_id, const std::string& plan = "business",
                        const std::string& name = "Root");
std::string create_sub_org(Client& as_admin, const std::string& parent_id, const std::string& name = "Sub");
void grant(Client& op, const std::string& org_id, std::int64_t amount_micros);
std::int64_t json_int(const boost::json::value& v, std::initializer_list<const char*> path);
std::string json_str(const boost::json::value& v, std::initializer_list<const char*> path);

}  // namespace canopy::test
