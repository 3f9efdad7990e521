#include "net/ws_session.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <deque>
#include <unordered_set>

#include "config/limits.hpp"
#include "domain/rules.hpp"
#include "net/json_in.hpp"
#include "net/json_out.hpp"
#include "net/metrics.hpp"
#include "net/stream_hub.hpp"
#include "net/usage_outcome.hpp"
#include "net/views.hpp"

namespace canopy::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using namespace canopy::domain;

std::string error_message(std::string_view code, std::string_view message, std::string_view org_id = {}) {
  JsonWriter w;
  w.begin_object().key("type").string("error").key("code").string(code).key("message").string(message);
  if (!org_id.empty()) w.key("org_id").string(org_id);
  w.end_object();
  return w.take();
}

class WsSession : public StreamSubscriber, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(beast::tcp_stream&& stream, actors::Services& services, StreamHub& hub, actors::Principal principal)
      : ws_(std::move(stream)), services_(services), hub_(hub), principal_(principal) {
    metrics().connections_open.fetch_add(1, std::memory_order_relaxed);
    metrics().stream_connections.fetch_add(1, std::memory_order_relaxed);
  }
  ~WsSession() override {
    metrics().connections_open.fetch_sub(1, std::memory_order_relaxed);
    metrics().stream_connections.fetch_sub(1, std::memory_order_relaxed);
  }

  void run(http::request<http::string_body> request) {
    beast::get_lowest_layer(ws_).expires_never();  // the websocket timeouts take over
    websocket::stream_base::timeout timeout{};
    timeout.handshake_timeout = limits::stream_handshake_timeout;
    timeout.idle_timeout = limits::stream_idle_timeout;
    timeout.keep_alive_pings = true;
    ws_.set_option(timeout);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "canopy"); }));
    ws_.read_message_max(limits::stream_message_bytes_max);
    ws_.async_accept(request, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
  }

  // From the hub's timer thread: hop onto our strand.
  void on_change(const actors::OrgPtr& org) override {
    asio::post(ws_.get_executor(), [self = shared_from_this(), org] { self->push(org); });
  }

  void on_alert(const Alert& alert) override {
    asio::post(ws_.get_executor(), [self = shared_from_this(), alert] { self->push_alert(alert); });
  }

  void on_shutdown() override {
    asio::post(ws_.get_executor(), [self = shared_from_this()] { self->close_with(websocket::close_code::going_away); });
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return finish();
    hub_.attach(shared_from_this());
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) return finish();  // closed by the peer, timed out, or a message over read_message_max
    std::string text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    handle(text);
    if (!closing_) do_read();
  }

  void handle(std::string& text) {
    StreamMessage message;
    if (auto err = parse_stream_message(text, services_.clock.now(), message)) {
      return enqueue(error_message(errc_name(err->code), err->message));
    }
    switch (message.op) {
      case StreamMessage::Op::subscribe: return subscribe(message.org_id);
      case StreamMessage::Op::unsubscribe: return unsubscribe(message.org_id);
      case StreamMessage::Op::usage: return usage(std::move(message.event));
    }
  }

  // The org and how we reach it, if the caller may read it; else nullopt after answering not_found
  // (the contract's answer to any unauthorized subscribe: an API key, say, learns nothing either).
  std::optional<std::pair<std::vector<actors::OrgPtr>, Access>> reach(const std::string& org_id) {
    const auto id = parse_org_id(org_id);
    std::vector<actors::OrgPtr> lineage;
    if (id) lineage = services_.directory.lineage(*id);
    const Access access = lineage.empty() ? Access{} : services_.directory.access(principal_, lineage);
    if (lineage.empty() || !access.visible() || !allows(access, Permission::read_org, lineage.front()->is_root())) {
      enqueue(error_message("not_found", "Organization not found", org_id));
      return std::nullopt;
    }
    return std::make_pair(std::move(lineage), access);
  }

  void subscribe(const std::string& org_id) {
    const auto reached = reach(org_id);
    if (!reached) return;
    const OrgId id = reached->first.front()->id;
    if (subscriptions_.insert(id).second) hub_.subscribe(shared_from_this(), id);
    auto org = std::make_shared<const OrgState>(
        view_at(*reached->first.front(), services_.clock.now(), services_.options.free_credits_micros));
    const bool hide = hides_money(*org, reached->second);
    enqueue(Outgoing{OrgId::none, [org, hide](std::uint64_t seq) {
      JsonWriter w;
      w.begin_object().key("type").string("subscribed").key("org_id").string(to_string(org->id)).key("snapshot");
      write_balance_event(w, *org, hide, seq);
      w.end_object();
      return w.take();
    }});
  }

  void unsubscribe(const std::string& org_id) {
    const auto id = parse_org_id(org_id);
    if (id && subscriptions_.erase(*id)) hub_.unsubscribe(this, *id);
    JsonWriter w;
    w.begin_object().key("type").string("unsubscribed").key("org_id").string(org_id).end_object();
    enqueue(w.take());
  }

  void usage(UsageEventIn in) {
    const auto answer_refused = [this](std::string_view id, std::string_view code) {
      JsonWriter w;
      w.begin_object().key("type").string("usage_result").key("id").string(id);
      w.key("status").string("refused").key("code").string(code).end_object();
      enqueue(w.take());
    };
    const auto id = parse_org_id(in.org_id);
    std::vector<actors::OrgPtr> lineage;
    if (id) lineage = services_.directory.lineage(*id);
    const Access access = lineage.empty() ? Access{} : services_.directory.access(principal_, lineage);
    if (lineage.empty() || !access.visible() || !allows(access, Permission::write_usage, lineage.front()->is_root())) {
      return answer_refused(in.event.id, "not_found");
    }
    auto events = std::make_shared<const std::vector<ChargeEvent>>(1, std::move(in.event));
    std::weak_ptr<WsSession> weak = shared_from_this();
    caf::anon_send(services_.directory.actor_of(*id), actors::charge_atom::value,
                   actors::ChargeRequest{events, services_.clock.now(), effective_modules(actors::raw_lineage(lineage)),
                                         [weak, events](std::vector<actors::ChargeOutcome> out) {
                     count_outcome(out.front());
                     auto self = weak.lock();
                     if (!self) return;
                     JsonWriter w;
                     w.begin_object().key("type").string("usage_result").key("id").string(events->front().id);
                     write_outcome(w, out.front());
                     w.end_object();
                     asio::post(self->ws_.get_executor(), [self, text = w.take()]() mutable { self->enqueue(std::move(text)); });
                   }});
  }

  void push(const actors::OrgPtr& snapshot) {
    if (closing_ || !subscriptions_.count(snapshot->id)) return;
    const auto lineage = services_.directory.lineage(snapshot->id);
    const Access access = lineage.empty() ? Access{} : services_.directory.access(principal_, lineage);
    if (lineage.empty() || !access.visible() || !allows(access, Permission::read_org, lineage.front()->is_root())) {
      // Access lost since subscribing (removed, detached): stop, and say so the way subscribe would.
      subscriptions_.erase(snapshot->id);
      hub_.unsubscribe(this, snapshot->id);
      return enqueue(error_message("not_found", "Organization not found", to_string(snapshot->id)));
    }
    auto org = std::make_shared<const OrgState>(
        view_at(*lineage.front(), services_.clock.now(), services_.options.free_credits_micros));
    const bool hide = hides_money(*org, access);
    enqueue(Outgoing{org->id, [org, hide](std::uint64_t seq) {
      JsonWriter w;
      write_balance_event(w, *org, hide, seq);
      metrics().stream_pushes.fetch_add(1, std::memory_order_relaxed);
      return w.take();
    }});
  }

  void push_alert(const Alert& alert) {
    if (closing_ || !subscriptions_.count(alert.org)) return;
    const auto lineage = services_.directory.lineage(alert.org);
    const Access access = lineage.empty() ? Access{} : services_.directory.access(principal_, lineage);
    if (lineage.empty() || !access.visible() || !allows(access, Permission::read_org, lineage.front()->is_root())) return;
    const bool hide = hides_money(*lineage.front(), access);
    enqueue(Outgoing{OrgId::none, [alert, hide](std::uint64_t seq) {
      JsonWriter w;
      w.begin_object().key("type").string("alert").key("seq").unsigned_integer(seq).key("alert");
      write_alert(w, alert, hide);
      w.end_object();
      return w.take();
    }});
  }

  // A message waiting to be written, rendered only when its turn comes so `seq` follows the order
  // messages actually leave in. A balance push (`balance_of` set) is replaced by a newer one for the
  // same org while it waits: the latest state wins, so a connection holds at most one per org.
  struct Outgoing {
    OrgId balance_of = OrgId::none;
    std::function<std::string(std::uint64_t seq)> render;
  };

  void enqueue(std::string text) {
    enqueue(Outgoing{OrgId::none, [text = std::move(text)](std::uint64_t) { return text; }});
  }

  void enqueue(Outgoing message) {
    if (closing_) return;
    const std::size_t waiting_from = writing_ ? 1 : 0;  // the front is being written: never touch it
    if (message.balance_of != OrgId::none) {
      for (std::size_t i = waiting_from; i < queue_.size(); ++i) {
        if (queue_[i].balance_of == message.balance_of) {
          queue_[i].render = std::move(message.render);
          return;
        }
      }
    }
    // Balance pushes are bounded by the subscriptions; everything else by the configured queue.
    if (queue_.size() >= services_.options.stream_queue_messages + subscriptions_.size()) {
      metrics().stream_slow_closes.fetch_add(1, std::memory_order_relaxed);
      return close_with(websocket::close_code::policy_error);
    }
    queue_.push_back(std::move(message));
    if (!writing_) write_next();
  }

  void write_next() {
    writing_ = true;
    writing_text_ = queue_.front().render(++seq_);
    ws_.text(true);
    ws_.async_write(asio::buffer(writing_text_),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    if (ec) return finish();
    queue_.pop_front();
    if (!closing_ && !queue_.empty()) write_next();
  }

  // Stops queueing, drops what is not being written, and closes with `code` (after any write in
  // progress; Beast lets one close run beside one write).
  void close_with(websocket::close_code code) {
    if (closing_) return;
    closing_ = true;
    while (queue_.size() > (writing_ ? 1u : 0u)) queue_.pop_back();
    ws_.async_close(code, [self = shared_from_this()](beast::error_code) { self->finish(); });
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    closing_ = true;
    hub_.remove(this, subscriptions_);
    subscriptions_.clear();
  }

  websocket::stream<beast::tcp_stream> ws_;
  actors::Services& services_;
  StreamHub& hub_;
  const actors::Principal principal_;
  beast::flat_buffer buffer_;
  std::unordered_set<OrgId> subscriptions_;
  std::deque<Outgoing> queue_;
  std::string writing_text_;  // the frame being written (its buffer must outlive async_write)
  std::uint64_t seq_ = 0;
  bool writing_ = false;
  bool closing_ = false;
  bool finished_ = false;
};

}  // namespace

void start_ws_session(beast::tcp_stream stream, http::request<http::string_body> request, actors::Services& services,
                      StreamHub& hub, actors::Principal principal) {
  std::make_shared<WsSession>(std::move(stream), services, hub, principal)->run(std::move(request));
}

}  // namespace canopy::net
