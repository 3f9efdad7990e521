#include "bench/loadgen_setup.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <simdjson.h>

namespace canopy::loadgen {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// A setup request that takes longer than this means the server is stuck; we stop rather than wait.
constexpr std::chrono::seconds setup_request_timeout{30};
constexpr std::size_t error_body_bytes_shown = 300;
constexpr std::chrono::seconds progress_interval{5};

struct Reply {
  int status = 0;
  std::string body;
  std::string transport_error;  // set when no HTTP answer came
};

// One keep-alive connection carrying one request at a time; reconnects when the server closed it.
class SetupClient {
 public:
  SetupClient(asio::io_context& io, const Target& target) : stream_(io), target_(target) {}

  asio::awaitable<Reply> call(http::verb verb, const std::string& path, const std::string& token, std::string body) {
    Reply reply;
    beast::error_code ec;
    if (!stream_.socket().is_open()) {
      stream_.expires_after(setup_request_timeout);
      co_await stream_.async_connect(target_.endpoint, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return Reply{0, {}, "connect: " + ec.message()};
      beast::error_code ignored;  // best effort: only latency depends on it
      stream_.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    http::request<http::string_body> request{verb, path, 11};
    request.set(http::field::host, target_.host_header);
    request.set(http::field::authorization, "Bearer " + token);
    if (!body.empty()) request.set(http::field::content_type, "application/json");
    request.body() = std::move(body);
    request.prepare_payload();
    // Why a deadline on each step: a server that stops answering must fail the setup, not hang it.
    stream_.expires_after(setup_request_timeout);
    co_await http::async_write(stream_, request, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      http::response_parser<http::string_body> parser;
      parser.body_limit(response_body_limit);
      co_await http::async_read(stream_, buffer_, parser, asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) {
        reply.status = static_cast<int>(parser.get().result_int());
        reply.body = std::move(parser.get().body());
        if (!parser.get().keep_alive()) close();
        co_return reply;
      }
    }
    close();
    reply.transport_error = ec.message();
    co_return reply;
  }

 private:
  static constexpr std::uint64_t response_body_limit = 1 << 20;

  void close() {
    beast::error_code ignored;
    stream_.socket().close(ignored);
    buffer_.clear();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  const Target& target_;
};

struct SetupState {
  SetupState(asio::io_context& io, const Options& options_in, Forest& forest_in, const std::string& run_tag_in)
      : options(options_in), forest(forest_in), run_tag(run_tag_in), root_ready(io) {
    // Never expires: waiters are woken only by cancel(), which leaves the expiry alone, so re-waiting
    // needs no re-arming (re-arming would cancel, and so wake, every other waiter).
    root_ready.expires_at(asio::steady_timer::time_point::max());
  }

  const Options& options;
  Forest& forest;
  const std::string& run_tag;
  std::string owner_token;
  std::size_t roots_ready = 0;  // trees whose root exists: roots are made in tree order
  bool roots_done = false;      // the root creator has stopped (all made, or a failure)
  asio::steady_timer root_ready;  // cancelled each time a root is made, to wake idle tree workers
  std::size_t next_tree = 0;    // next tree for a worker to fill in; <= roots_ready
  std::size_t trees_filled = 0;
  std::chrono::steady_clock::time_point last_progress = std::chrono::steady_clock::now();
  std::string failure;  // first failure; once set, workers stop taking trees
  SetupReport report;
  simdjson::ondemand::parser json;  // one thread runs every coroutine, so one parser serves all
};

// Reads a string field of a JSON object body.
std::optional<std::string> string_field(SetupState& state, const std::string& body, const char* key) {
  const simdjson::padded_string padded{body};
  simdjson::ondemand::document doc;
  std::string_view value;
  if (state.json.iterate(padded).get(doc) || doc[key].get_string().get(value)) return std::nullopt;
  return std::string{value};
}

// A token goes into an Authorization header: printable ASCII without spaces.
bool is_header_safe(const std::string& token) {
  return !token.empty() && std::all_of(token.begin(), token.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

// Sends one request; on anything but 2xx records the failure and returns nullopt.
asio::awaitable<std::optional<Reply>> send(SetupClient& client, SetupState& state, http::verb verb,
                                           const std::string& path, const std::string& token, std::string body) {
  Reply reply = co_await client.call(verb, path, token, std::move(body));
  ++state.report.requests;
  if (reply.status >= 200 && reply.status < 300) co_return reply;
  if (state.failure.empty()) {
    const std::string what = std::string{http::to_string(verb)} + " " + path;
    state.failure = reply.status == 0
                        ? what + ": " + reply.transport_error
                        : what + " -> " + std::to_string(reply.status) + " " + reply.body.substr(0, error_body_bytes_shown);
  }
  co_return std::nullopt;
}

// Sends a create request and returns the new object's id.
asio::awaitable<std::optional<std::string>> create(SetupClient& client, SetupState& state, const std::string& path,
                                                   const std::string& token, std::string body) {
  const auto reply = co_await send(client, state, http::verb::post, path, token, std::move(body));
  if (!reply) co_return std::nullopt;
  auto id = string_field(state, reply->body, "id");
  if (id && is_safe_id(*id)) co_return id;
  if (state.failure.empty()) state.failure = "POST " + path + ": no usable \"id\" in " + reply->body.substr(0, 200);
  co_return std::nullopt;
}

asio::awaitable<void> create_owner(SetupClient& client, SetupState& state) {
  const std::string body = R"({"email":"loadgen-)" + state.run_tag + R"(@example.com","name":"canopy-loadgen )" +
                           state.run_tag + R"("})";
  const auto reply = co_await send(client, state, http::verb::post, "/v1/users", state.options.operator_token, body);
  if (!reply) co_return;
  const auto id = string_field(state, reply->body, "id");
  const auto token = string_field(state, reply->body, "token");
  if (!id || !is_safe_id(*id)) {
    state.failure = "POST /v1/users: no usable \"id\" in " + reply->body.substr(0, 200);
    co_return;
  }
  state.forest.owner_user_id = *id;
  // Sub-orgs and limits are made as the owner (an admin of every root), as a real tenant would.
  if (!token || !is_header_safe(*token)) {
    state.failure = "POST /v1/users: no usable \"token\" in the answer";
    co_return;
  }
  state.owner_token = *token;
}

std::string org_path(const std::string& id, const char* tail) { return "/v1/orgs/" + id + tail; }

std::string tree_name(const SetupState& state, std::size_t tree) {
  return "lg-" + state.run_tag + "-" + std::to_string(tree);
}

// Why one coroutine makes every root, back to back on its own connection: the server admits one root
// creation per owner at a time (409 conflict for the others), and all our roots share one owner. The
// tree workers fill in each tree as soon as its root exists, so the two overlap.
asio::awaitable<void> root_creator(SetupClient& client, SetupState& state) {
  Forest& forest = state.forest;
  for (std::size_t tree = 0; tree < forest.roots.size() && state.failure.empty(); ++tree) {
    const std::string body = R"({"name":")" + tree_name(state, tree) + R"(","plan":"business","owner_user_id":")" +
                             forest.owner_user_id + R"("})";
    auto id = co_await create(client, state, "/v1/orgs", state.options.operator_token, body);
    if (!id) break;
    forest.orgs[forest.tree_begin(tree)].id = std::move(*id);
    ++state.report.roots;
    ++state.roots_ready;
    state.root_ready.cancel();
  }
  state.roots_done = true;
  state.root_ready.cancel();
}

// Fills in one tree whose root exists: its grant, its sub-orgs parent first, then the spending limits.
asio::awaitable<void> fill_tree(SetupClient& client, SetupState& state, std::size_t tree) {
  const Options& o = state.options;
  Forest& forest = state.forest;
  const std::string name = tree_name(state, tree);
  const ForestOrg& root = forest.orgs[forest.tree_begin(tree)];
  if (o.grant_micros > 0) {
    const std::string body = R"({"amount_micros":)" + std::to_string(o.grant_micros) + R"(,"reason":"canopy-loadgen"})";
    if (!co_await send(client, state, http::verb::post, org_path(root.id, "/billing/grants"), o.operator_token, body))
      co_return;
    ++state.report.grants;
  }
  for (std::size_t i = forest.tree_begin(tree) + 1; i < forest.tree_end(tree); ++i) {
    const std::string& parent_id = forest.orgs[static_cast<std::size_t>(forest.orgs[i].parent)].id;
    const std::string body = R"({"name":")" + name + "-" + std::to_string(i - forest.tree_begin(tree)) + R"("})";
    auto id = co_await create(client, state, org_path(parent_id, "/sub-orgs"), state.owner_token, body);
    if (!id) co_return;
    forest.orgs[i].id = std::move(*id);
    ++state.report.sub_orgs;
  }
  const std::string limit_body = R"({"monthly_limit_micros":)" + std::to_string(o.limit_micros) + "}";
  for (std::size_t i = forest.tree_begin(tree) + 1; i < forest.tree_end(tree); ++i) {
    if (!forest.orgs[i].limited) continue;
    if (!co_await send(client, state, http::verb::put, org_path(forest.orgs[i].id, "/billing/spending-limit"),
                       state.owner_token, limit_body))
      co_return;
    ++state.report.limits;
  }
}

// A line now and then, so that a large forest does not look like a hung tool.
void report_progress(SetupState& state) {
  const auto now = std::chrono::steady_clock::now();
  if (now - state.last_progress < progress_interval) return;
  state.last_progress = now;
  std::cout << "setup: " << state.report.roots << " of " << state.forest.roots.size() << " roots made, "
            << state.trees_filled << " trees filled, " << state.report.requests << " requests so far" << std::endl;
}

asio::awaitable<void> tree_worker(SetupClient& client, SetupState& state) {
  while (state.failure.empty()) {
    if (state.next_tree < state.roots_ready) {
      const std::size_t tree = state.next_tree++;
      co_await fill_tree(client, state, tree);
      ++state.trees_filled;
      report_progress(state);
    } else if (state.roots_done) {
      break;
    } else {
      boost::system::error_code woken;  // operation_aborted: the root creator cancelled the wait
      co_await state.root_ready.async_wait(asio::redirect_error(asio::use_awaitable, woken));
    }
  }
}

}  // namespace

SetupReport run_setup(const Options& options, const Target& target, Forest& forest, const std::string& run_tag) {
  const auto started = std::chrono::steady_clock::now();
  asio::io_context io{1};
  SetupState state{io, options, forest, run_tag};
  const auto on_exit = [&state](const std::exception_ptr& error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      if (state.failure.empty()) state.failure = std::string{"setup: "} + e.what();
    }
    state.roots_done = true;  // nobody may be left waiting for a root
    state.root_ready.cancel();
  };
  SetupClient first{io, target};
  asio::co_spawn(io, create_owner(first, state), on_exit);
  io.run();  // the owner first: every tree needs its id
  io.restart();

  const std::size_t workers = std::min<std::size_t>(options.setup_connections, forest.roots.size());
  std::vector<std::unique_ptr<SetupClient>> clients;
  if (state.failure.empty()) {
    clients.push_back(std::make_unique<SetupClient>(io, target));
    asio::co_spawn(io, root_creator(*clients.back(), state), on_exit);
    for (std::size_t i = 0; i < workers; ++i) {
      clients.push_back(std::make_unique<SetupClient>(io, target));
      asio::co_spawn(io, tree_worker(*clients.back(), state), on_exit);
    }
    io.run();
  }
  state.report.connections = workers + 1;
  state.report.error = state.failure;
  state.report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return state.report;
}

}  // namespace canopy::loadgen
