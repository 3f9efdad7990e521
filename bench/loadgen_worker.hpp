// One thread of the load phase: an io_context, its share of the connections, and the loop that
// decides when each request is sent.
//
// Closed loop (--rate 0): every connection keeps `pipeline` requests in flight and sends the next one
// as soon as an answer arrives. Latency is measured from the moment a request is sent.
// Open loop (--rate R): requests follow a fixed timetable (this thread's share of R, evenly spaced
// from the common start). A due request goes out on any connection with a free slot; when none is
// free it waits, and its latency is still measured from its scheduled time, so a stalled server shows
// up in the percentiles instead of silently slowing the generator (coordinated omission). The backlog
// is only a counter: nothing queues in memory.
//
// What is measured: throughput and outcome counts take the answers received inside the window
// [warmup end, deadline); latency takes the requests started (closed loop) or scheduled (open loop)
// inside it, whenever their answer came. Requests that never got one are recorded in the latency
// histogram as lower bounds, so an overloaded server cannot look fast: open-loop slots still unsent at
// the deadline count as (deadline - scheduled), answers still missing when the drain ends as
// (now - start).
//
// Bounded in time: at the deadline no more requests are sent, answers in flight get --drain seconds,
// then the io_context is stopped, whatever the server does. --max-requests is shared by all threads.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bench/loadgen_connection.hpp"
#include "bench/loadgen_forest.hpp"
#include "bench/loadgen_options.hpp"
#include "bench/loadgen_stats.hpp"
#include "bench/loadgen_workload.hpp"

namespace canopy::loadgen {

// What every thread of one run shares. Set up before the threads start; only the counter changes.
struct SharedRun {
  const Options& options;
  const Target& target;
  Clock::time_point start;       // the open-loop timetable starts here
  Clock::time_point warmup_end;  // requests started before it are not measured
  Clock::time_point deadline;    // no request is sent at or after it
  std::atomic<std::uint64_t> requests_started{0};  // against --max-requests
};

class Worker final : private ConnectionListener {
 public:
  Worker(SharedRun& run, const Forest& forest, const std::string& run_tag, unsigned index, std::uint32_t connections);

  // Runs the load until the deadline plus drain, or until --max-requests are answered. Blocks.
  void run();

  // After run(): what was counted, and when this thread stopped.
  const Stats& stats() const { return stats_; }
  Clock::time_point finished_at() const { return finished_at_; }
  const Workload& workload() const { return workload_; }

 private:
  void on_open(Connection& connection) override;
  void on_response(Connection& connection, const SentRequest& sent, int status, const std::string& body) override;
  void on_broken(Connection& connection, std::size_t lost, bool was_open) override;

  bool take_request_ticket();
  void send(Connection& connection, Clock::time_point start);
  void fill_closed_loop(Connection& connection, Clock::time_point now);
  void dispatch_due();  // open loop
  void arm_tick(Clock::time_point due);
  Clock::time_point scheduled(std::uint64_t slot) const;
  Connection* pop_free_slot();
  void on_deadline();
  void record_unsent_slots();
  void record_unanswered(Clock::time_point now);
  void maybe_finish();
  void finish();

  boost::asio::io_context io_{1};  // declared first: destroyed last, after everything using it
  SharedRun& run_;
  const bool open_loop_;
  Workload workload_;
  Stats stats_;
  std::vector<std::unique_ptr<Connection>> connections_;
  boost::asio::steady_timer deadline_timer_;
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer tick_timer_;

  std::size_t in_flight_ = 0;
  bool stopping_ = false;         // the deadline passed
  bool out_of_requests_ = false;  // --max-requests reached
  bool finished_ = false;
  Clock::time_point finished_at_{};

  // Open loop only.
  double slot_ns_ = 0;                   // time between two requests of this thread's timetable
  double phase_ns_ = 0;                  // offset of this thread's first slot from the common start
  std::uint64_t next_slot_ = 0;          // first slot of the timetable not sent yet
  bool tick_armed_ = false;
  std::vector<Connection*> free_slots_;  // one entry per free pipeline slot of an open connection
};

}  // namespace canopy::loadgen
