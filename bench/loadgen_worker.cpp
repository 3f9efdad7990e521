#include "bench/loadgen_worker.hpp"

#include <algorithm>
#include <cmath>

namespace canopy::loadgen {
namespace {

// Pauses before reconnecting: short after a drop (the server is there), longer after a refused connect.
constexpr std::chrono::milliseconds reconnect_after_drop{10};
constexpr std::chrono::milliseconds reconnect_after_refusal{100};

std::uint64_t nanoseconds_between(Clock::time_point from, Clock::time_point to) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count();
  return ns > 0 ? static_cast<std::uint64_t>(ns) : 0;
}

}  // namespace

Worker::Worker(SharedRun& run, const Forest& forest, const std::string& run_tag, unsigned index,
               std::uint32_t connections)
    : run_(run),
      open_loop_(run.options.rate > 0),
      workload_(run.options, run.target, forest, run_tag, index),
      deadline_timer_(io_),
      drain_timer_(io_),
      tick_timer_(io_) {
  ConnectionListener& listener = *this;  // the base is private: only connections call back into it
  connections_.reserve(connections);
  for (std::uint32_t i = 0; i < connections; ++i)
    connections_.push_back(std::make_unique<Connection>(io_, run.target, listener, run.options.pipeline));
  if (open_loop_) {
    slot_ns_ = 1e9 * run.options.threads / run.options.rate;
    // Threads interleave their timetables instead of all sending at the same instants.
    phase_ns_ = slot_ns_ * index / run.options.threads;
    free_slots_.reserve(std::size_t{connections} * run.options.pipeline);
  }
}

void Worker::run() {
  for (auto& connection : connections_) connection->connect();
  deadline_timer_.expires_at(run_.deadline);
  deadline_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) on_deadline();
  });
  io_.run();
  for (const auto& connection : connections_) {
    stats_.bytes_sent += connection->bytes_sent();
    stats_.bytes_received += connection->bytes_received();
  }
}

// One ticket per request, so that --max-requests holds across threads.
bool Worker::take_request_ticket() {
  if (stopping_ || out_of_requests_) return false;
  const std::uint64_t cap = run_.options.max_requests;
  if (cap != 0 && run_.requests_started.fetch_add(1, std::memory_order_relaxed) >= cap) {
    out_of_requests_ = true;
    return false;
  }
  return true;
}

void Worker::send(Connection& connection, Clock::time_point start) {
  const std::uint32_t events = workload_.append_request(connection.request_buffer());
  const bool measured = start >= run_.warmup_end && start < run_.deadline;
  connection.commit(SentRequest{start, events, measured});
  ++in_flight_;
  ++stats_.requests_sent;
  stats_.events_sent += events;
}

void Worker::fill_closed_loop(Connection& connection, Clock::time_point now) {
  while (connection.can_send() && take_request_ticket()) send(connection, now);
}

void Worker::on_open(Connection& connection) {
  if (open_loop_) {
    free_slots_.insert(free_slots_.end(), run_.options.pipeline, &connection);
    dispatch_due();
  } else {
    fill_closed_loop(connection, Clock::now());
  }
  maybe_finish();
}

void Worker::on_response(Connection& connection, const SentRequest& sent, int status, const std::string& body) {
  --in_flight_;
  const Clock::time_point now = Clock::now();
  if (sent.measured) stats_.latency_ns.record(nanoseconds_between(sent.start, now));
  if (now >= run_.warmup_end && now < run_.deadline) workload_.count_response(status, body, sent.events, stats_);
  if (open_loop_) {
    free_slots_.push_back(&connection);
    dispatch_due();
  } else {
    fill_closed_loop(connection, now);
  }
  maybe_finish();
}

void Worker::on_broken(Connection& connection, std::size_t lost, bool was_open) {
  if (was_open) {
    ++stats_.connection_drops;
    stats_.lost_requests += lost;
    in_flight_ -= lost;
  } else {
    ++stats_.connect_errors;
  }
  std::erase(free_slots_, &connection);
  if (!stopping_ && !out_of_requests_) connection.connect_after(was_open ? reconnect_after_drop : reconnect_after_refusal);
  maybe_finish();
}

Clock::time_point Worker::scheduled(std::uint64_t slot) const {
  return run_.start + std::chrono::nanoseconds(static_cast<std::int64_t>(phase_ns_ + static_cast<double>(slot) * slot_ns_));
}

Connection* Worker::pop_free_slot() {
  while (!free_slots_.empty()) {
    Connection* connection = free_slots_.back();
    free_slots_.pop_back();
    if (connection->can_send()) return connection;
  }
  return nullptr;
}

// Sends every request whose time has come, as far as free slots allow; the rest wait for an answer
// (which calls this again) or for the tick timer.
void Worker::dispatch_due() {
  const Clock::time_point now = Clock::now();
  while (!stopping_ && !out_of_requests_) {
    const Clock::time_point due = scheduled(next_slot_);
    if (due >= run_.deadline) return;
    if (due > now) return arm_tick(due);
    Connection* connection = pop_free_slot();
    if (connection == nullptr) return;  // backlog: every slot is busy
    if (!take_request_ticket()) {
      free_slots_.push_back(connection);
      return;
    }
    send(*connection, due);
    ++next_slot_;
  }
}

void Worker::arm_tick(Clock::time_point due) {
  if (tick_armed_) return;  // already armed for an earlier or equal slot: the timetable only moves on
  tick_armed_ = true;
  tick_timer_.expires_at(due);
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    tick_armed_ = false;
    if (ec) return;
    dispatch_due();
    maybe_finish();
  });
}

void Worker::on_deadline() {
  if (open_loop_ && !out_of_requests_) record_unsent_slots();
  stopping_ = true;
  tick_timer_.cancel();
  if (in_flight_ == 0) return finish();
  drain_timer_.expires_after(std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(run_.options.drain_s)));
  drain_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || finished_) return;
    record_unanswered(Clock::now());
    finish();
  });
}

// Slots due before the deadline that never found a free connection: the server fell behind. Those
// scheduled inside the window waited at least until the deadline.
void Worker::record_unsent_slots() {
  const double window_ns = static_cast<double>(nanoseconds_between(run_.start, run_.deadline));
  const auto due_slots = static_cast<std::uint64_t>(std::ceil((window_ns - phase_ns_) / slot_ns_));
  for (std::uint64_t slot = next_slot_; slot < due_slots; ++slot) {
    const Clock::time_point due = scheduled(slot);
    if (due >= run_.deadline) break;
    ++stats_.unsent_requests;
    if (due < run_.warmup_end) continue;
    stats_.latency_ns.record(nanoseconds_between(due, run_.deadline));
    ++stats_.latency_lower_bounds;
  }
}

void Worker::record_unanswered(Clock::time_point now) {
  stats_.unanswered_requests += in_flight_;
  for (const auto& connection : connections_) {
    connection->for_each_in_flight([&](const SentRequest& sent) {
      if (!sent.measured) return;
      stats_.latency_ns.record(nanoseconds_between(sent.start, now));
      ++stats_.latency_lower_bounds;
    });
  }
}

void Worker::maybe_finish() {
  if (!finished_ && in_flight_ == 0 && (stopping_ || out_of_requests_)) finish();
}

void Worker::finish() {
  finished_ = true;
  finished_at_ = Clock::now();
  deadline_timer_.cancel();
  drain_timer_.cancel();
  tick_timer_.cancel();
  for (auto& connection : connections_) connection->close();
  io_.stop();
}

}  // namespace canopy::loadgen
