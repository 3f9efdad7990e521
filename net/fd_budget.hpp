// How many connections the process can hold open, given its file-descriptor limit (RLIMIT_NOFILE).
//
// Every connection is a descriptor, and so is everything else the process opens (limits::fds_reserved).
// If the process runs out before the server reaches its connection cap, accept fails with EMFILE and new
// connections hang in the backlog instead of being closed at once. So at start, as Redis and nginx do,
// the server raises its soft limit toward what --max-connections needs (never above the hard limit,
// which only root may raise), and where that is not enough it serves fewer connections and says so in
// one line. The arithmetic is pure (plan_fd_budget) so it can be tested without touching the process.
//
// Called once from app/serve.cpp before anything else opens descriptors; not thread-safe (setrlimit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace canopy::net {

struct FdBudget {
  std::size_t connections_configured = 0;  // --max-connections
  std::uint64_t fds_needed = 0;            // connections_configured + limits::fds_reserved
  std::uint64_t fd_limit = 0;              // the soft limit in force after raising it
  std::size_t connections_max = 0;         // the cap the server enforces; 0: not even connections_min fit

  bool serves_all() const { return connections_max == connections_configured; }
  bool serves_none() const { return connections_max == 0; }
};

// The soft limit to ask for: enough for `connections` plus the reserve, at most `hard`, never lower
// than `soft` already is. RLIM_INFINITY is the largest value, so it needs no special case.
std::uint64_t wanted_fd_limit(std::size_t connections, std::uint64_t soft, std::uint64_t hard);

// The connection cap that fits in `fd_limit`: `connections` if it all fits, else fd_limit minus the
// reserve, or 0 when that is below limits::connections_min.
// REQUIRES: connections >= limits::connections_min (config::parse checks it).
FdBudget plan_fd_budget(std::size_t connections, std::uint64_t fd_limit);

// Raises this process's soft RLIMIT_NOFILE as plan_fd_budget needs (a failure to raise it only means
// a smaller budget) and returns the budget for the limit then in force.
FdBudget apply_fd_budget(std::size_t connections);

// The start line for a budget that does not serve all connections, without the "canopy: " prefix:
// "--max-connections 20000 needs 20128 file descriptors but the limit is 1024; serving at most 896
// connections", or, when none fit, what to raise the limit to.
std::string describe(const FdBudget& budget);

}  // namespace canopy::net
