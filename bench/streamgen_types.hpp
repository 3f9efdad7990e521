// Types shared by the parts of canopy-streamgen (the live-stream fan-out benchmark).
//
// Times are nanoseconds since the tool's epoch (one steady_clock reading taken at start), so that the
// charger thread and the stream threads stamp on one time line and the offline matcher
// (streamgen_match.hpp) can compare them directly.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace canopy::streamgen {

using Clock = std::chrono::steady_clock;

inline std::int64_t since(Clock::time_point epoch, Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t - epoch).count();
}

// One acknowledged batch, as seen for one org: after this answer arrived at t_ns, the org's cycle spend
// was at least its spend at subscription time plus spend_added_micros (every accepted charge the tool
// has had acknowledged for that org so far). Non-decreasing in t_ns, per org.
struct Ack {
  std::int64_t spend_added_micros = 0;
  std::int64_t t_ns = 0;
  bool measured = false;  // the batch was due inside the measured window
};

// One balance push (or the subscription snapshot) as a connection received it.
struct PushRecord {
  std::int64_t t_ns = 0;
  std::int64_t cycle_spend_micros = 0;
};

// One (connection, org) subscription and everything it heard, in arrival order.
struct Subscription {
  std::uint32_t org = 0;                    // index into the tool's org list
  bool subscribed = false;                  // the "subscribed" answer came
  std::int64_t snapshot_spend_micros = -1;  // cycle spend in that answer's snapshot
  std::vector<PushRecord> pushes;           // balance pushes only (not the snapshot)
};

}  // namespace canopy::streamgen
