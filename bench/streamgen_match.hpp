// Offline matching of acknowledgements to pushes for canopy-streamgen, run after every thread has
// stopped (nothing here is measured while the load runs).
//
// The question a dashboard user asks: "my charge was acknowledged; how long until my screen shows
// it?". So for each acknowledged batch (its Ack for org o, arrived at T) and each subscription to o,
// the sample is the arrival time of the first push on that subscription whose cycle_spend_micros is at
// least baseline(o) + the spend acknowledged for o up to and including that batch, minus T; zero when
// such a push had already arrived before the acknowledgement (the push can beat the HTTP answer: both
// leave the server after the commit). baseline(o) is the largest snapshot spend any subscription to o
// saw on subscribing, which all came before the first charge. Acknowledged spend is a lower bound of
// the committed spend (answers of concurrent batches may arrive in any order), so a push that passes
// it shows every acknowledged charge of o, whatever else it also shows.
#pragma once

#include <cstdint>
#include <vector>

#include "bench/loadgen_histogram.hpp"
#include "bench/streamgen_types.hpp"

namespace canopy::streamgen {

struct MatchResult {
  loadgen::Histogram latency_ns;      // one sample per (measured Ack, subscription to its org)
  std::uint64_t before_ack = 0;       // of those, the push had come first (sample 0)
  std::uint64_t missing = 0;          // (measured Ack, subscription) pairs no push ever showed
  std::uint64_t subscriptions_unusable = 0;  // no snapshot: never subscribed (connection failed)
  std::uint64_t orgs_baseline_spread = 0;    // orgs whose subscriptions saw different snapshots
};

// REQUIRES: acks[o] is in arrival order with non-decreasing spend_added_micros; every subscription's
// org < acks.size().
MatchResult match_acks_to_pushes(const std::vector<std::vector<Ack>>& acks, const std::vector<const Subscription*>& subs);

}  // namespace canopy::streamgen
