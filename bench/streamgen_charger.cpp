#include "bench/streamgen_charger.hpp"

#include <algorithm>
#include <charconv>
#include <deque>
#include <memory>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <simdjson.h>

#include "bench/loadgen_batch_results.hpp"

namespace canopy::streamgen {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

constexpr std::uint64_t response_body_bytes_max = 64 * 1024 * 1024;

Clock::duration seconds(double value) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(value));
}

struct Batch {
  std::uint64_t k = 0;
  Clock::time_point due;
  bool measured = false;
};

struct HttpConn {
  explicit HttpConn(asio::io_context& io) : stream(io) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  std::optional<http::response_parser<http::string_body>> parser;
  Batch batch;
  bool busy = false;
};

class Charger {
 public:
  explicit Charger(const ChargerConfig& config)
      : c_(config),
        timer_(io_),
        drain_timer_(io_),
        org_count_(config.charge_orgs != 0 ? config.charge_orgs : static_cast<std::uint32_t>(config.org_ids->size())) {
    result_.acks.resize(config.org_ids->size());
    spend_added_.assign(org_count_, 0);
    interval_ = seconds(static_cast<double>(c_.batch_size) / c_.rate_events_per_s);
    for (std::uint32_t i = 0; i < c_.http_connections; ++i) conns_.push_back(std::make_unique<HttpConn>(io_));
    event_tail_ = R"(","type":")" + c_.event_type + R"(","quantity":1,"cost_micros":)" + std::to_string(c_.cost_micros) + "}";
  }

  ChargerResult run() {
    result_.started = Clock::now();
    result_.warmup_end = result_.started + seconds(c_.warmup_s);
    result_.deadline = result_.warmup_end + seconds(c_.duration_s);
    tick();
    io_.run();
    return std::move(result_);
  }

 private:
  // Which org event i of batch k goes to.
  std::uint32_t org_of(std::uint64_t k, std::uint32_t i) const {
    const std::uint64_t group = std::uint64_t{i} * c_.batch_orgs / c_.batch_size;
    return static_cast<std::uint32_t>((k * c_.batch_orgs + group) % org_count_);
  }

  Clock::time_point due_of(std::uint64_t k) const { return result_.started + interval_ * static_cast<std::int64_t>(k); }

  // Queues every batch that has fallen due, sends what the idle connections can take, sleeps until the next.
  void tick() {
    const auto now = Clock::now();
    while (due_of(next_k_) <= now && due_of(next_k_) < result_.deadline) {
      backlog_.push_back(Batch{next_k_, due_of(next_k_), due_of(next_k_) >= result_.warmup_end});
      ++next_k_;
      ++result_.batches_due;
    }
    while (backlog_.size() > c_.backlog_max) {
      backlog_.pop_front();
      ++result_.batches_skipped;
    }
    dispatch();
    if (due_of(next_k_) < result_.deadline) {
      timer_.expires_at(due_of(next_k_));
      timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) tick();
      });
      return;
    }
    sending_done_ = true;
    backlog_.clear();  // whatever could not be sent by the deadline is not sent
    drain_timer_.expires_at(result_.deadline + seconds(c_.drain_s));
    drain_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) close_all();
    });
    maybe_finish();
  }

  void dispatch() {
    for (auto& conn : conns_) {
      if (backlog_.empty()) return;
      if (conn->busy) continue;
      send(*conn, backlog_.front());
      backlog_.pop_front();
    }
  }

  void build_request(HttpConn& conn) {
    std::string& body = conn.request.body();
    body.assign(R"({"events":[)");
    const std::uint64_t k = conn.batch.k;
    for (std::uint32_t i = 0; i < c_.batch_size; ++i) {
      if (i != 0) body += ',';
      body += R"({"id":")";
      body += c_.run_tag;
      body += '-';
      append_hex(body, k);
      body += '-';
      append_hex(body, i);
      body += R"(","org_id":")";
      body += (*c_.org_ids)[org_of(k, i)];
      body += event_tail_;
    }
    body += "]}";
    conn.request.method(http::verb::post);
    conn.request.target("/v1/usage:batch");
    conn.request.version(11);
    conn.request.set(http::field::host, c_.target.host_header);
    conn.request.set(http::field::authorization, "Bearer " + c_.token);
    conn.request.set(http::field::content_type, "application/json");
    conn.request.keep_alive(true);
    conn.request.prepare_payload();
  }

  static void append_hex(std::string& out, std::uint64_t value) {
    char digits[16];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value, 16);
    (void)ec;  // 16 hex digits hold any uint64
    out.append(digits, end);
  }

  void send(HttpConn& conn, const Batch& batch) {
    conn.busy = true;
    conn.batch = batch;
    ++result_.batches_sent;
    if (Clock::now() - batch.due > interval_) ++result_.batches_late;
    build_request(conn);
    // An answer later than the drain deadline is not waited for (close_all() cancels it).
    if (!conn.stream.socket().is_open()) {
      conn.stream.expires_after(seconds(c_.warmup_s + c_.duration_s + c_.drain_s));
      conn.stream.async_connect(c_.target.endpoint, [this, &conn](const boost::system::error_code& ec) {
        if (ec) return fail(conn);
        boost::system::error_code ignored;
        conn.stream.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
        write(conn);
      });
      return;
    }
    write(conn);
  }

  void write(HttpConn& conn) {
    conn.stream.expires_after(seconds(c_.warmup_s + c_.duration_s + c_.drain_s));
    http::async_write(conn.stream, conn.request, [this, &conn](const boost::system::error_code& ec, std::size_t) {
      if (ec) return fail(conn);
      conn.parser.emplace();
      conn.parser->body_limit(response_body_bytes_max);
      http::async_read(conn.stream, conn.buffer, *conn.parser,
                       [this, &conn](const boost::system::error_code& rec, std::size_t) { on_answer(conn, rec); });
    });
  }

  void fail(HttpConn& conn) {
    ++result_.batches_failed;
    boost::system::error_code ignored;
    conn.stream.socket().close(ignored);
    conn.buffer.clear();
    done_with(conn);
  }

  void on_answer(HttpConn& conn, const boost::system::error_code& ec) {
    if (ec) return fail(conn);
    const auto now = Clock::now();
    const auto& response = conn.parser->get();
    if (response.result_int() / 100 != 2) {
      ++result_.http_errors;
      result_.refused_by_code["http_" + std::to_string(response.result_int())] += c_.batch_size;
      result_.events_refused += c_.batch_size;
    } else {
      ++result_.batches_acked;
      count_results(conn.batch, response.body(), now);
      if (conn.batch.measured) result_.batch_latency_ns.record(static_cast<std::uint64_t>((now - conn.batch.due).count()));
    }
    if (!response.keep_alive()) {
      boost::system::error_code ignored;
      conn.stream.socket().close(ignored);
      conn.buffer.clear();
    }
    done_with(conn);
  }

  // {"results":[{"id","status","code"?,…},…]}, one per event, in order: adds each org's accepted spend
  // and records one Ack per org that gained any.
  void count_results(const Batch& batch, const std::string& body, Clock::time_point now) {
    accepted_in_batch_.assign(c_.batch_orgs, 0);
    const simdjson::padded_string padded{body};
    simdjson::ondemand::document doc;
    std::uint32_t i = 0;
    const bool parsed = !json_.iterate(padded).get(doc) &&
                        loadgen::visit_batch_results(doc, [&](std::string_view status, std::string_view code) {
                          if (i >= c_.batch_size) return false;
                          if (status == "accepted") {
                            ++accepted_in_batch_[static_cast<std::size_t>(std::uint64_t{i} * c_.batch_orgs / c_.batch_size)];
                          } else {
                            ++result_.events_refused;
                            ++result_.refused_by_code[std::string{code.empty() ? status : code}];
                          }
                          ++i;
                          return true;
                        });
    if (!parsed) {
      result_.refused_by_code["unparsed_answer"] += c_.batch_size;
      return;
    }
    const std::int64_t t_ns = since(c_.epoch, now);
    for (std::uint32_t g = 0; g < c_.batch_orgs; ++g) {
      const std::uint64_t accepted = accepted_in_batch_[g];
      if (accepted == 0) continue;
      result_.events_accepted += accepted;
      if (batch.measured) result_.events_accepted_measured += accepted;
      const std::uint32_t org = static_cast<std::uint32_t>((batch.k * c_.batch_orgs + g) % org_count_);
      spend_added_[org] += static_cast<std::int64_t>(accepted) * c_.cost_micros;
      result_.acks[org].push_back(Ack{spend_added_[org], t_ns, batch.measured});
    }
  }

  void done_with(HttpConn& conn) {
    conn.busy = false;
    if (!sending_done_) return dispatch();
    maybe_finish();
  }

  void maybe_finish() {
    if (std::any_of(conns_.begin(), conns_.end(), [](const auto& conn) { return conn->busy; })) return;
    drain_timer_.cancel();
    close_all();
  }

  void close_all() {
    for (auto& conn : conns_) {
      boost::system::error_code ignored;
      conn->stream.socket().close(ignored);  // pending reads complete with operation_aborted -> fail()
    }
  }

  ChargerConfig c_;
  asio::io_context io_{1};
  asio::steady_timer timer_;
  asio::steady_timer drain_timer_;
  const std::uint32_t org_count_;
  Clock::duration interval_{};
  std::vector<std::unique_ptr<HttpConn>> conns_;
  std::deque<Batch> backlog_;
  std::uint64_t next_k_ = 0;
  bool sending_done_ = false;
  std::string event_tail_;
  std::vector<std::int64_t> spend_added_;
  std::vector<std::uint64_t> accepted_in_batch_;
  simdjson::ondemand::parser json_;
  ChargerResult result_;
};

}  // namespace

ChargerResult run_charger(const ChargerConfig& config) {
  Charger charger{config};
  return charger.run();
}

}  // namespace canopy::streamgen
