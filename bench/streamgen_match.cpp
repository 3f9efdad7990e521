#include "bench/streamgen_match.hpp"

#include <algorithm>

namespace canopy::streamgen {

MatchResult match_acks_to_pushes(const std::vector<std::vector<Ack>>& acks, const std::vector<const Subscription*>& subs) {
  MatchResult out;
  std::vector<std::int64_t> baseline_max(acks.size(), -1);
  std::vector<std::int64_t> baseline_min(acks.size(), -1);
  for (const Subscription* s : subs) {
    if (!s->subscribed) continue;
    auto& hi = baseline_max[s->org];
    auto& lo = baseline_min[s->org];
    hi = std::max(hi, s->snapshot_spend_micros);
    lo = lo < 0 ? s->snapshot_spend_micros : std::min(lo, s->snapshot_spend_micros);
  }
  for (std::size_t o = 0; o < acks.size(); ++o) {
    if (baseline_max[o] != baseline_min[o]) ++out.orgs_baseline_spread;
  }
  for (const Subscription* s : subs) {
    if (!s->subscribed) {
      ++out.subscriptions_unusable;
      continue;
    }
    const std::int64_t base = baseline_max[s->org];
    const auto& pushes = s->pushes;
    std::size_t i = 0;  // first push not yet known to fall short of the current target
    // Targets never decrease along acks[o] and a cycle's spend never decreases along the pushes, so
    // one pass over each suffices.
    for (const Ack& ack : acks[s->org]) {
      const std::int64_t target = base + ack.spend_added_micros;
      while (i < pushes.size() && pushes[i].cycle_spend_micros < target) ++i;
      if (!ack.measured) continue;
      if (i == pushes.size()) {
        ++out.missing;
        continue;
      }
      const std::int64_t latency = pushes[i].t_ns - ack.t_ns;
      if (latency <= 0) ++out.before_ack;
      out.latency_ns.record(static_cast<std::uint64_t>(std::max<std::int64_t>(latency, 0)));
    }
  }
  return out;
}

}  // namespace canopy::streamgen
