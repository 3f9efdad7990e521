// Process-wide counters for GET /metrics (Prometheus text format). Relaxed atomics: exactness
// across counters is not needed, only monotonic totals.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace canopy::net {

struct Metrics {
  std::atomic<std::uint64_t> requests_2xx{0};
  std::atomic<std::uint64_t> requests_4xx{0};
  std::atomic<std::uint64_t> requests_5xx{0};
  std::atomic<std::uint64_t> events_accepted{0};
  std::atomic<std::uint64_t> events_refused{0};
  std::atomic<std::uint64_t> connections_open{0};
  std::atomic<std::uint64_t> connections_refused{0};
  std::atomic<std::uint64_t> accept_pauses{0};  // accept failed for want of descriptors or memory
  std::atomic<std::uint64_t> stream_connections{0};
  std::atomic<std::uint64_t> stream_pushes{0};
  std::atomic<std::uint64_t> stream_slow_closes{0};
  std::atomic<bool> ready{false};

  void count_status(unsigned status) {
    (status < 400 ? requests_2xx : status < 500 ? requests_4xx : requests_5xx).fetch_add(1, std::memory_order_relaxed);
  }
};

Metrics& metrics();

}  // namespace canopy::net
