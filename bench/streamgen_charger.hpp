// The charging side of canopy-streamgen: POST /v1/usage:batch on a fixed timetable (open loop), and
// for each acknowledged batch, per org, how much acknowledged spend the org has gained so far.
//
// Runs on the calling thread with its own io_context. Batch k is due at start + k * batch_size / rate
// and is sent on the first idle keep-alive connection (one request in flight per connection, up to
// http_connections); a batch that finds none waits in a backlog of at most backlog_max batches, past
// which the oldest is skipped and counted, so a slow server shows up as a lower achieved rate, never
// as an unbounded queue. Nothing is sent past start + warmup + duration; answers are awaited at most
// drain seconds after that, then the connections are closed.
//
// Batch k's events go to batch_orgs consecutive orgs of the list (of its first charge_orgs), starting
// at org k * batch_orgs, in equal contiguous groups: every charged org gets the same share of the load
// and of the batches.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench/loadgen_histogram.hpp"
#include "bench/loadgen_options.hpp"
#include "bench/streamgen_types.hpp"

namespace canopy::streamgen {

struct ChargerConfig {
  loadgen::Target target;
  std::string token;                                  // operator token or an org API key
  const std::vector<std::string>* org_ids = nullptr;  // outlives the charger
  Clock::time_point epoch;
  std::string run_tag;                                // makes event ids unique to this run
  double rate_events_per_s = 50'000;                  // REQUIRES: > 0
  std::uint32_t batch_size = 500;                     // REQUIRES: 1..10,000
  std::uint32_t batch_orgs = 5;                       // REQUIRES: 1..charge_orgs
  std::uint32_t charge_orgs = 0;                      // charge only org_ids[0, charge_orgs); 0: all
  std::uint32_t http_connections = 64;                // REQUIRES: >= 1
  double warmup_s = 2;
  double duration_s = 20;
  double drain_s = 5;
  std::int64_t cost_micros = 1000;
  std::string event_type = "assistants.reply";
  std::size_t backlog_max = 256;
};

struct ChargerResult {
  std::vector<std::vector<Ack>> acks;  // per org of org_ids (charged or not), in arrival order
  Clock::time_point started;           // the first batch's due time
  Clock::time_point warmup_end;
  Clock::time_point deadline;          // no batch is due at or after this
  std::uint64_t batches_due = 0;
  std::uint64_t batches_sent = 0;
  std::uint64_t batches_late = 0;      // sent more than one interval after their due time
  std::uint64_t batches_skipped = 0;   // dropped from a full backlog
  std::uint64_t batches_acked = 0;     // 2xx answers
  std::uint64_t batches_failed = 0;    // no answer (connection error or drain timeout)
  std::uint64_t http_errors = 0;       // non-2xx answers
  std::uint64_t events_accepted = 0;
  std::uint64_t events_accepted_measured = 0;
  std::uint64_t events_refused = 0;
  std::map<std::string, std::uint64_t> refused_by_code;
  loadgen::Histogram batch_latency_ns;  // due time -> answer, measured batches
};

ChargerResult run_charger(const ChargerConfig& config);

}  // namespace canopy::streamgen
