#include "net/fd_budget.hpp"

#include <sys/resource.h>

#include <algorithm>

#include "config/limits.hpp"

namespace canopy::net {

std::uint64_t wanted_fd_limit(std::size_t connections, std::uint64_t soft, std::uint64_t hard) {
  const std::uint64_t needed = std::uint64_t{connections} + limits::fds_reserved;
  return std::max(soft, std::min(needed, hard));
}

FdBudget plan_fd_budget(std::size_t connections, std::uint64_t fd_limit) {
  FdBudget budget;
  budget.connections_configured = connections;
  budget.fds_needed = std::uint64_t{connections} + limits::fds_reserved;
  budget.fd_limit = fd_limit;
  if (fd_limit >= budget.fds_needed) {
    budget.connections_max = connections;
  } else {
    // fd_limit < connections + reserve, so what is left after the reserve is below `connections`.
    const std::uint64_t left = fd_limit > limits::fds_reserved ? fd_limit - limits::fds_reserved : 0;
    budget.connections_max = left >= limits::connections_min ? static_cast<std::size_t>(left) : 0;
  }
  return budget;
}

FdBudget apply_fd_budget(std::size_t connections) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return plan_fd_budget(connections, 0);
  const std::uint64_t wanted = wanted_fd_limit(connections, limit.rlim_cur, limit.rlim_max);
  if (wanted > limit.rlim_cur) {
    rlimit raised = limit;
    raised.rlim_cur = static_cast<rlim_t>(wanted);
    // It can still fail (a hard limit above fs.nr_open, a sandbox): then the old limit stays, and the
    // budget below is what it allows.
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return plan_fd_budget(connections, limit.rlim_cur);
}

std::string describe(const FdBudget& budget) {
  std::string line = "--max-connections " + std::to_string(budget.connections_configured) + " needs " +
                     std::to_string(budget.fds_needed) + " file descriptors but the limit is " +
                     std::to_string(budget.fd_limit);
  if (budget.serves_none()) {
    return line + ", too few to serve even " + std::to_string(limits::connections_min) +
           " connections; raise it (ulimit -n) to at least " +
           std::to_string(limits::connections_min + limits::fds_reserved);
  }
  return line + "; serving at most " + std::to_string(budget.connections_max) + " connections";
}

}  // namespace canopy::net
