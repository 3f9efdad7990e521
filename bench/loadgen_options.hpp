// Command line of canopy-loadgen, and the loopback-only target it implies.
//
// Parsed once by main(); afterwards read-only and shared by every thread. Every numeric option has a
// range checked at parse time, so the rest of the tool can rely on the REQUIRES below.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/ip/tcp.hpp>

namespace canopy::loadgen {

enum class Mode { single, batch, probe };
const char* mode_name(Mode mode);

struct Options {
  // --- target and credentials ---
  std::string url = "http://127.0.0.1:8080";
  std::string operator_token;  // --operator-token or CANOPY_OPERATOR_TOKEN
  std::string usage_token;     // token for the load phase; empty: the operator token

  // --- setup: the forest ---
  std::uint32_t roots = 1000;
  std::uint32_t orgs_per_root = 15;    // REQUIRES: depth >= 1 when > 1
  std::uint32_t depth = 3;             // levels below each root
  std::int64_t grant_micros = 1'000'000'000'000;
  double limited_fraction = 0.33;      // of the sub-orgs, in [0, 1]
  std::int64_t limit_micros = 10'000'000'000;
  std::uint32_t setup_connections = 32;
  std::string save_forest;
  std::string load_forest;
  bool setup_only = false;

  // --- load ---
  Mode mode = Mode::single;
  std::uint32_t connections = 64;      // total, split across threads; REQUIRES: >= threads
  std::uint32_t threads = 1;
  std::uint32_t pipeline = 1;          // requests in flight per connection
  double rate = 0;                     // requests/s over all connections; 0 = closed loop
  double duration_s = 10;              // measured window, after the warmup
  double warmup_s = 1;
  double drain_s = 2;                  // after the deadline, how long to wait for answers in flight
  std::uint64_t max_requests = 0;      // 0 = only the duration bounds the run
  std::uint32_t batch_size = 1000;     // events per usage:batch request, <= 10,000
  std::uint32_t batch_orgs = 0;        // orgs one batch's events are spread over (0: the whole forest)
  std::int64_t cost_micros = 1000;
  std::uint64_t quantity = 1;
  std::string event_type = "assistants.reply";
  std::uint64_t seed = 1;              // forest shape and org choice; event ids are unique per run anyway
};

struct ParsedOptions {
  std::optional<Options> options;  // set when the run should go on
  int exit_code = 0;               // otherwise: 0 after --help, 2 after a bad option (message printed)
};
ParsedOptions parse_options(int argc, char** argv);

// An HTTP endpoint on this machine.
struct Target {
  std::string host_header;                 // "host:port" as the URL spelled the host
  boost::asio::ip::tcp::endpoint endpoint;  // resolved and checked to be loopback
};

struct ResolvedTarget {
  std::optional<Target> target;
  std::string error;  // when target is empty: why, in one line
};
// Accepts only http://HOST[:PORT][/] where every address HOST resolves to is in 127.0.0.0/8 or ::1:
// this tool generates enough traffic to be an attack on anything else.
ResolvedTarget resolve_loopback_target(const std::string& url);

}  // namespace canopy::loadgen
