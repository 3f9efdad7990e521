// The subscriber side of canopy-streamgen: many WebSocket connections on GET /v1/stream, each
// subscribed to a few orgs, recording every balance push with its arrival time.
//
// A StreamShard owns a set of connections and one io_context run by one thread of its own; everything
// about those connections (sockets, buffers, the push records) is touched only by that thread while it
// runs. Other threads may read the atomic counters at any time and everything else only after stop().
//
// Connections open at most `connect_concurrency` at a time (the server accepts on one thread; a burst
// of 10,000 handshakes would only time out), each handshake bounded by `handshake_timeout`. Once open a
// connection sends its subscribe messages, then reads until stop(); it never writes anything else
// (Beast answers the server's pings by itself). Every message is read with a size limit; push records
// stop being kept past `push_records_max` per shard (counted in records_dropped) so memory is bounded.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include "bench/loadgen_options.hpp"
#include "bench/streamgen_types.hpp"

namespace canopy::streamgen {

struct StreamConfig {
  loadgen::Target target;
  std::string token;
  const std::vector<std::string>* org_ids = nullptr;  // outlives the shard
  Clock::time_point epoch;
  std::uint32_t connect_concurrency = 128;
  std::chrono::seconds handshake_timeout{30};
  std::size_t push_records_max = 20'000'000;
};

struct StreamCounters {
  std::atomic<std::uint64_t> opened{0};            // handshake done
  std::atomic<std::uint64_t> connect_failed{0};    // TCP connect or handshake failed
  std::atomic<std::uint64_t> subscribed{0};        // "subscribed" answers
  std::atomic<std::uint64_t> pushes{0};            // balance pushes
  std::atomic<std::uint64_t> alerts{0};
  std::atomic<std::uint64_t> error_messages{0};    // {"type":"error"} from the server
  std::atomic<std::uint64_t> unparsed{0};          // messages we could not make sense of
  std::atomic<std::uint64_t> closed_by_server{0};  // close frames received (codes in close_codes)
  std::atomic<std::uint64_t> read_errors{0};       // connection lost without a close frame
  std::atomic<std::uint64_t> records_dropped{0};
};

class StreamShard {
 public:
  explicit StreamShard(const StreamConfig& config);
  ~StreamShard();
  StreamShard(const StreamShard&) = delete;
  StreamShard& operator=(const StreamShard&) = delete;

  // REQUIRES: before start(); orgs non-empty, each < org_ids->size().
  void add_connection(const std::vector<std::uint32_t>& orgs);
  // Starts the thread; it begins opening the connections.
  void start();
  // Closes every connection at once (abortive: RST, so neither side keeps TIME_WAIT sockets) and joins.
  void stop();

  const StreamCounters& counters() const { return counters_; }
  std::size_t connection_count() const { return connections_.size(); }
  std::size_t subscription_count() const { return subscription_count_; }

  // After stop(): every subscription with what it heard, and close codes received (code -> count).
  std::vector<const Subscription*> subscriptions() const;
  std::map<unsigned, std::uint64_t> close_codes() const { return close_codes_; }

 private:
  struct Connection;
  void connect_more();
  void on_opened(Connection& c, bool ok);
  void send_subscribe(Connection& c);
  void do_read(Connection& c);
  void on_read(Connection& c, const boost::system::error_code& ec);
  void handle_message(Connection& c, std::string_view text, std::int64_t t_ns);

  StreamConfig config_;
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::size_t subscription_count_ = 0;
  std::size_t next_to_open_ = 0;
  std::uint32_t opening_ = 0;
  std::size_t records_kept_ = 0;
  bool stopping_ = false;
  std::map<unsigned, std::uint64_t> close_codes_;
  StreamCounters counters_;
  std::thread thread_;
};

}  // namespace canopy::streamgen
