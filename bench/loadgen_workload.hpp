// What the load phase sends and how it reads the answers, for one thread.
//
// Builds each request (headers and body) into a buffer its caller reuses, from pieces prepared once:
// after the first few requests, building one allocates nothing. Event ids are
// "<run tag><thread>-<counter in hex>", unique within the run and, through the random run tag,
// across runs (a reused id would be answered from the server's idempotency record and charge nothing).
//
// Owned by one Worker thread; the forest it points into is shared read-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <simdjson.h>

#include "bench/loadgen_forest.hpp"
#include "bench/loadgen_http.hpp"
#include "bench/loadgen_options.hpp"
#include "bench/loadgen_random.hpp"
#include "bench/loadgen_stats.hpp"

namespace canopy::loadgen {

static_assert(simdjson::SIMDJSON_PADDING <= body_padding_bytes, "response bodies must carry simdjson's padding");

class Workload {
 public:
  // REQUIRES: forest has orgs with ids unless options.mode is probe.
  Workload(const Options& options, const Target& target, const Forest& forest, const std::string& run_tag,
           unsigned thread_index);

  // Appends one complete request to out; returns the number of events it carries.
  std::uint32_t append_request(std::string& out);

  // Counts a measured answer. body is what ResponseParser left (padded for simdjson).
  void count_response(int status, const std::string& body, std::uint32_t events, Stats& stats);

  // Largest body a request of this workload can have, for a warning about server body limits.
  std::size_t body_bytes_max() const;

 private:
  void append_event_id(std::string& out);
  // Appends the headers after the request line, then body_.
  void finish_request(std::string& out) const;
  std::uint32_t append_single(std::string& out);
  std::uint32_t append_batch(std::string& out);
  void count_single_ok(const std::string& body, Stats& stats);
  void count_batch_ok(const std::string& body, std::uint32_t events, Stats& stats);
  void count_refusal(int status, const std::string& body, std::uint32_t events, Stats& stats);

  const Options& options_;
  std::vector<const std::string*> org_ids_;  // every org of the forest
  std::vector<const std::string*> batch_pick_;  // this batch's orgs (--batch-orgs)
  SplitMix64 rng_;
  std::string id_prefix_;       // "<run tag><thread>-"
  std::uint64_t next_event_ = 0;
  std::string header_tail_;     // "Host: …\r\nAuthorization: …\r\nContent-Type: …\r\nContent-Length: "
  std::string probe_request_;   // the whole GET /healthz request
  std::string event_tail_;      // single: "\",\"type\":…}"; batch: "\",\"type\":…}"
  std::string body_;            // scratch for the body, reused
  simdjson::ondemand::parser json_;
};

}  // namespace canopy::loadgen
