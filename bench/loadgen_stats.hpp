// What one load-generator thread counted, and how the per-thread counts are merged.
//
// Owned by one Worker thread while the run is on; read by main() after every thread has joined.
// Memory is bounded whatever the run length: fixed arrays, a fixed-size histogram, and tallies that
// keep at most tally_keys_max distinct keys (the rest fold into "(other)").
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/loadgen_histogram.hpp"

namespace canopy::loadgen {

// Counts per string key (error codes, event statuses). Few distinct keys are expected, so a linear
// scan beats a hash map and allocates only when a key is seen for the first time.
class Tally {
 public:
  static constexpr std::size_t keys_max = 64;  // a misbehaving server cannot grow this without bound

  void add(std::string_view key, std::uint64_t n = 1);
  void merge(const Tally& other);
  // Entries sorted by count, largest first.
  std::vector<std::pair<std::string, std::uint64_t>> sorted() const;
  bool empty() const { return entries_.empty(); }

 private:
  std::vector<std::pair<std::string, std::uint64_t>> entries_;
};

struct Stats {
  static constexpr std::size_t status_codes_max = 600;

  // Everything sent, including warmup and the drain after the deadline.
  std::uint64_t requests_sent = 0;
  std::uint64_t events_sent = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;

  // Only answers received inside the measured window (after warmup, before the deadline).
  std::uint64_t responses = 0;
  std::array<std::uint64_t, status_codes_max> by_status{};  // index: HTTP status; 0 = out of range
  Tally error_codes;      // non-2xx: {"error": {"code": ...}}, or "(no error code)"
  std::uint64_t events_accepted = 0;
  std::uint64_t events_refused = 0;
  Tally refused_by_code;  // per refused event: its error code, or its status when it has none
  std::uint64_t unparsed_bodies = 0;  // answers whose body could not be read as expected
  // Requests started (or, open loop, scheduled) inside the window, answered at any time; plus lower
  // bounds for those never answered (see Worker).
  Histogram latency_ns;
  std::uint64_t latency_lower_bounds = 0;  // entries of latency_ns that are lower bounds

  // Transport trouble over the whole run.
  std::uint64_t connect_errors = 0;
  std::uint64_t connection_drops = 0;   // connections that broke or that the server closed
  std::uint64_t lost_requests = 0;      // in flight on a connection when it broke: no answer
  std::uint64_t unanswered_requests = 0;  // still in flight when the drain period ran out
  std::uint64_t unsent_requests = 0;    // open loop: due before the deadline but never sent (backlog)

  void count_status(int status);
  void merge(const Stats& other);
};

}  // namespace canopy::loadgen
