// The results of a run, as a human table and as one line of JSON (the last line of stdout, so that
// scripts can `tail -n 1 | jq`).
#pragma once

#include <cstddef>
#include <optional>
#include <ostream>

#include "bench/loadgen_options.hpp"
#include "bench/loadgen_setup.hpp"
#include "bench/loadgen_stats.hpp"

namespace canopy::loadgen {

struct RunSummary {
  const Options& options;
  const Stats& stats;              // merged over all threads
  double measured_s = 0;           // length of the measured window actually run
  std::size_t orgs = 0;            // orgs the load was spread over
  const SetupReport* setup = nullptr;  // when this run created the forest
};

void print_setup(std::ostream& out, const SetupReport& setup, std::size_t orgs, const std::vector<std::size_t>& per_level);
void print_table(std::ostream& out, const RunSummary& run);
void print_json_line(std::ostream& out, const RunSummary& run);

}  // namespace canopy::loadgen
