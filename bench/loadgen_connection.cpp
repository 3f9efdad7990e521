#include "bench/loadgen_connection.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>

namespace canopy::loadgen {
namespace {

constexpr std::size_t read_chunk_bytes = 64 * 1024;
// Only unparsed bytes stay in the read buffer (bodies are moved out as they are parsed), so it needs
// room for one header (<= 16 KiB) plus one read.
constexpr std::size_t read_buffer_bytes_max = 1024 * 1024;

}  // namespace

Connection::Connection(boost::asio::io_context& io, const Target& target, ConnectionListener& listener,
                       std::uint32_t pipeline)
    : socket_(io),
      pause_timer_(io),
      target_(target),
      listener_(listener),
      pipeline_(pipeline),
      in_flight_ring_(pipeline),
      read_buffer_(read_buffer_bytes_max) {}

void Connection::connect() {
  socket_.async_connect(target_.endpoint, [this, generation = generation_](const boost::system::error_code& ec) {
    on_connect(ec, generation);
  });
}

void Connection::connect_after(Clock::duration pause) {
  pause_timer_.expires_after(pause);
  pause_timer_.async_wait([this, generation = generation_](const boost::system::error_code& ec) {
    if (!ec && generation == generation_ && !open_) connect();
  });
}

void Connection::on_connect(const boost::system::error_code& ec, std::uint64_t generation) {
  if (generation != generation_) return;
  if (ec) {
    close();
    listener_.on_broken(*this, 0, false);
    return;
  }
  boost::system::error_code ignored;
  socket_.set_option(boost::asio::ip::tcp::no_delay(true), ignored);  // small requests must not wait for Nagle
  open_ = true;
  do_read();
  listener_.on_open(*this);
}

void Connection::close() {
  ++generation_;  // completions still queued for the old socket are ignored from now on
  open_ = false;
  writing_now_ = false;
  in_flight_ = 0;
  ring_head_ = 0;
  pending_.clear();
  read_buffer_.clear();
  parser_.reset();
  boost::system::error_code ignored;
  pause_timer_.cancel();
  socket_.close(ignored);
}

void Connection::fail() {
  const std::size_t lost = in_flight_;
  close();
  listener_.on_broken(*this, lost, true);
}

void Connection::commit(const SentRequest& sent) {
  in_flight_ring_[(ring_head_ + in_flight_) % pipeline_] = sent;
  ++in_flight_;
  if (!writing_now_) do_write();
}

// Hands everything pending to the socket in one write; requests committed meanwhile wait in pending_.
void Connection::do_write() {
  writing_.swap(pending_);
  pending_.clear();
  writing_now_ = true;
  boost::asio::async_write(socket_, boost::asio::buffer(writing_),
                           [this, generation = generation_](const boost::system::error_code& ec, std::size_t bytes) {
                             on_write(ec, bytes, generation);
                           });
}

void Connection::on_write(const boost::system::error_code& ec, std::size_t bytes, std::uint64_t generation) {
  if (generation != generation_) return;
  if (ec) return fail();
  bytes_sent_ += bytes;
  writing_now_ = false;
  if (!pending_.empty()) do_write();
}

// Reads whatever arrived; answers may come several at once when requests are pipelined.
void Connection::do_read() {
  socket_.async_read_some(read_buffer_.prepare(read_chunk_bytes),
                          [this, generation = generation_](const boost::system::error_code& ec, std::size_t bytes) {
                            on_read(ec, bytes, generation);
                          });
}

void Connection::on_read(const boost::system::error_code& ec, std::size_t bytes, std::uint64_t generation) {
  if (generation != generation_) return;
  if (ec) return fail();  // includes the server closing the connection (eof)
  bytes_received_ += bytes;
  read_buffer_.commit(bytes);
  if (parse_responses()) do_read();
}

bool Connection::parse_responses() {
  const std::uint64_t generation = generation_;
  while (read_buffer_.size() > 0) {
    if (!parser_) parser_.emplace(body_);
    boost::beast::error_code ec;
    const std::size_t used = parser_->put(read_buffer_.data(), ec);
    read_buffer_.consume(used);
    if (ec == boost::beast::http::error::need_more) break;
    if (ec || in_flight_ == 0) {  // malformed, or an answer nobody asked for
      fail();
      return false;
    }
    if (!parser_->is_done()) {
      if (used == 0) break;
      continue;
    }
    const bool keep_alive = parser_->keep_alive();
    const int status = parser_->status();
    parser_.reset();
    const SentRequest sent = in_flight_ring_[ring_head_];
    ring_head_ = (ring_head_ + 1) % pipeline_;
    --in_flight_;
    // The server will close after this answer: take no more requests, even from the callback below.
    if (!keep_alive) open_ = false;
    listener_.on_response(*this, sent, status, body_);
    if (generation != generation_) return false;  // the listener closed us
    if (!keep_alive) {
      fail();
      return false;
    }
  }
  return true;
}

}  // namespace canopy::loadgen
