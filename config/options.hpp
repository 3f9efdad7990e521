// Canopy's command line and configuration.
//
// Every setting has a flag (--data-dir), an environment twin (CANOPY_DATA_DIR) and a config-file key
// (data_dir), resolved as flag > env > file > default. The config file is `key = value` lines; `#`
// starts a comment. Every value is validated here, once, so the rest of the program can trust it:
// a bad value is an exit-2 error naming the option.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "config/limits.hpp"

namespace canopy::config {

enum class ClockKind { system, manual };

struct Options {
  std::string command;  // serve | check | backup | version

  // serve
  std::string config_file;
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8080;
  std::string data_dir = "./var";
  ClockKind clock = ClockKind::system;
  std::string public_url;  // default: http://<listen>
  std::string dns_server;
  std::string smtp_url;
  std::string outbox_dir = "./outbox";
  std::string mail_from;  // default: no-reply@<public_url host>
  std::uint32_t invitation_expiry_hours = limits::invitation_expiry_hours_default;
  std::size_t stream_queue_messages = limits::stream_queue_messages_default;
  bool allow_private_webhooks = false;
  bool demo = false;
  std::string operator_token;  // env or file only: never on a command line that `ps` shows

  std::size_t body_bytes_limit = limits::body_bytes_default;
  std::uint32_t max_depth = limits::depth_default;
  std::int64_t free_credits_micros = limits::free_credits_micros_default;
  std::uint32_t idempotency_retention_days = limits::idempotency_retention_days_default;
  std::size_t connections_max = limits::connections_default;
  unsigned io_threads = limits::io_threads_default;
  unsigned actor_threads = limits::actor_threads_default;
  std::string scheduler_policy = "sharing";   // sharing (actors/scheduler_policy.hpp) | stealing (CAF's)
  std::chrono::microseconds commit_window = limits::commit_window_default;
  std::chrono::milliseconds checkpoint_interval = limits::checkpoint_interval_default;

  // check / backup
  std::string target_dir;
  std::string backup_out_dir;
};

struct ParseResult {
  std::optional<Options> options;  // set when the program should run
  int exit_code = 0;               // otherwise: 0 for --help, 2 for a bad option
  std::string message;             // what to print (usage, or the one-line reason)
};

using GetEnv = std::function<const char*(const char*)>;

ParseResult parse(int argc, const char* const* argv, const GetEnv& getenv);

std::string version();

}  // namespace canopy::config
