#include "bench/loadgen_stats.hpp"

#include <algorithm>

namespace canopy::loadgen {

void Tally::add(std::string_view key, std::uint64_t n) {
  // Past keys_max - 1 distinct keys, new ones are counted under "(other)", which takes the last slot.
  const std::string_view slot = entries_.size() + 1 < keys_max ? key : std::string_view{"(other)"};
  for (auto& [name, count] : entries_) {
    if (name == key || name == slot) {
      count += n;
      return;
    }
  }
  entries_.emplace_back(std::string{slot}, n);
}

void Tally::merge(const Tally& other) {
  for (const auto& [name, count] : other.entries_) add(name, count);
}

std::vector<std::pair<std::string, std::uint64_t>> Tally::sorted() const {
  auto rows = entries_;
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return rows;
}

void Stats::count_status(int status) {
  const bool in_range = status > 0 && static_cast<std::size_t>(status) < status_codes_max;
  ++by_status[in_range ? static_cast<std::size_t>(status) : 0];
}

void Stats::merge(const Stats& other) {
  requests_sent += other.requests_sent;
  events_sent += other.events_sent;
  bytes_sent += other.bytes_sent;
  bytes_received += other.bytes_received;
  responses += other.responses;
  for (std::size_t i = 0; i < status_codes_max; ++i) by_status[i] += other.by_status[i];
  error_codes.merge(other.error_codes);
  events_accepted += other.events_accepted;
  events_refused += other.events_refused;
  refused_by_code.merge(other.refused_by_code);
  unparsed_bodies += other.unparsed_bodies;
  latency_ns.merge(other.latency_ns);
  latency_lower_bounds += other.latency_lower_bounds;
  connect_errors += other.connect_errors;
  connection_drops += other.connection_drops;
  lost_requests += other.lost_requests;
  unanswered_requests += other.unanswered_requests;
  unsent_requests += other.unsent_requests;
}

}  // namespace canopy::loadgen
