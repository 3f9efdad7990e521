// Goal: alerts and webhooks of CONTRACT.md "Alerts and webhooks", end to end: the real binary POSTs to a
// real HTTP receiver that this test runs on loopback (so the server runs with --allow-private-webhooks,
// except where the SSRF guard itself is under test).
//
// What a receiver may rely on, as these tests state it:
//   - POST /v1/orgs/{id}/webhooks {url, events} → 201 {id, secret, webhook}; the secret is shown once.
//   - each alert is POSTed as JSON {id, type, org_id, created_at, data} to every webhook of the org that
//     asked for its type, with `Canopy-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed with
//     the webhook's secret (recomputed here with OpenSSL).
//   - alerts fire once per crossing, not once per event: thresholds of the monthly limit, balance.low
//     (downward only), org.paused / org.resumed, auto_recharge.succeeded / auto_recharge.failed.
//   - delivery is at least once from a durable outbox: a receiver that fails gets the same event (same id)
//     again after 1 s, then 2 s…, for 24 h, then no more; the attempts are listed newest first; a restart
//     of the server, even kill -9, in the middle of the retries still delivers; a delivery the server
//     crashed during is sent again with the same id (receivers dedupe by it).
//   - a new cycle resumes a paused org at the cycle start, and org.resumed is sent then.
//   - a deleted webhook gets nothing more, not even the retries it had pending.
//   - without --allow-private-webhooks, URLs on loopback, private or link-local addresses are refused with
//     400 naming `url`.
// "Nothing more arrives" is checked with a later alert as a sentinel wherever delivery order makes that
// sound (the outbox is delivered oldest first); only the pending-retry case needs a bounded wait.
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <ctime>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <regex>
#include <thread>

#include "tests/e2e/harness.hpp"
#include "tests/e2e/ws_client.hpp"

namespace canopy::test {
namespace {

namespace json = boost::json;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// "<prefix><n>" (spelled out: GCC 12 warns falsely on `"literal" + std::to_string(n)`).
std::string numbered(std::string prefix, std::int64_t n) {
  prefix += std::to_string(n);
  return prefix;
}


// --- a webhook receiver on loopback --------------------------------------------------------------------

struct Post {
  std::string method;
  std::string target;
  std::string content_type;
  std::string signature;  // the Canopy-Signature header
  std::string body;
  unsigned answered = 0;  // the status we answered
  json::value doc() const {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    return ec ? json::value(nullptr) : v;
  }
};

// An HTTP/1.1 server on 127.0.0.1 (ephemeral port) that records every request and answers 200, or the
// status it was told to fail with for the next N requests to a path.
class Receiver {
 public:
  Receiver() : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~Receiver() {
    ioc_.stop();
    thread_.join();
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string url(const std::string& path) const { return numbered("http://127.0.0.1:", port()) + path; }

  // The next `count` requests to `path` are answered `status` (count -1: until told otherwise).
  void fail(const std::string& path, int count, unsigned status = 500) {
    std::lock_guard lock(mutex_);
    failures_[path] = {count, status};
  }
  // Requests to `path` are read in full and recorded, then never answered (as if the receiver hung).
  void hold(const std::string& path) { fail(path, -1, 0); }
  void heal(const std::string& path) {
    std::lock_guard lock(mutex_);
    failures_.erase(path);
  }

  std::vector<Post> posts(const std::string& path) const {
    std::lock_guard lock(mutex_);
    std::vector<Post> out;
    for (const auto& p : posts_) {
      if (p.target == path) out.push_back(p);
    }
    return out;
  }

  // Polls until `done(posts(path))` holds, at most `limit`; returns the posts at that point.
  std::vector<Post> wait(const std::string& path, const std::function<bool(const std::vector<Post>&)>& done,
                         std::chrono::milliseconds limit = 10s) const {
    const auto until = Clock::now() + limit;
    for (;;) {
      auto got = posts(path);
      if (done(got) || Clock::now() >= until) return got;
      std::this_thread::sleep_for(10ms);
    }
  }

 private:
  struct Connection : std::enable_shared_from_this<Connection> {
    Connection(tcp::socket socket, Receiver& owner) : stream(std::move(socket)), receiver(owner) {}
    void read() {
      request = {};
      http::async_read(stream, buffer, request, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (!ec) self->answer();
      });
    }
    void answer() {
      const unsigned status = receiver.record(request);
      if (status == 0) return receiver.keep(shared_from_this());  // held: never answered
      response = {};
      response.version(11);
      response.result(status);
      response.set(http::field::content_type, "text/plain");
      response.body() = status < 300 ? "ok" : "try again";
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      http::async_write(stream, response, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec) return;
        if (!self->response.keep_alive()) {
          beast::error_code ignored;
          self->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
          return;
        }
        self->read();
      });
    }
    beast::tcp_stream stream;
    Receiver& receiver;
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::response<http::string_body> response;
  };

  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      std::make_shared<Connection>(std::move(socket), *this)->read();
      accept();
    });
  }

  void keep(std::shared_ptr<Connection> held) {
    std::lock_guard lock(mutex_);
    held_.push_back(std::move(held));
  }

  unsigned record(const http::request<http::string_body>& req) {
    std::lock_guard lock(mutex_);
    Post p;
    p.method = std::string(req.method_string());
    p.target = std::string(req.target());
    p.content_type = std::string(req[http::field::content_type]);
    p.signature = std::string(req["Canopy-Signature"]);
    p.body = req.body();
    p.answered = 200;
    if (auto it = failures_.find(p.target); it != failures_.end() && it->second.first != 0) {
      p.answered = it->second.second;
      if (it->second.first > 0) --it->second.first;
    }
    posts_.push_back(p);
    return p.answered;
  }

  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<Post> posts_;
  std::map<std::string, std::pair<int, unsigned>> failures_;  // path -> (count, status); status 0: hold
  std::vector<std::shared_ptr<Connection>> held_;
};

// --- signature ---------------------------------------------------------------------------------------

std::string hmac_sha256_hex(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &length);
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < length; ++i) {
    hex += digits[mac[i] >> 4];
    hex += digits[mac[i] & 15];
  }
  return hex;
}

// Verifies `Canopy-Signature: t=<unix>,v1=<hex>` the way a receiver would; "" when it holds, else why not.
std::string signature_problem(const Post& p, const std::string& secret) {
  static const std::regex format(R"(^t=(\d+),v1=([0-9a-f]{64})$)");
  std::smatch m;
  if (!std::regex_match(p.signature, m, format)) return "malformed header '" + p.signature + "'";
  const std::int64_t t = std::stoll(m[1].str());
  const std::int64_t now = std::time(nullptr);
  if (t < now - 300 || t > now + 60) return numbered("stale t=", t) + numbered(" (now ", now) + ")";
  if (m[2] != hmac_sha256_hex(secret, m[1].str() + "." + p.body)) return "v1 does not match the HMAC of t.body";
  return "";
}

// --- the server ----------------------------------------------------------------------------------------

json::value event(const std::string& id, std::int64_t cost) {
  return {{"id", id}, {"type", "assistants.reply"}, {"quantity", 1}, {"cost_micros", cost}};
}

json::value card(const std::string& last4) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  return {{"brand", "visa"}, {"last4", last4}, {"exp_month", 12}, {"exp_year", tm.tm_year + 1900 + 3}};
}

json::value strings(std::initializer_list<const char*> items) {
  json::array a;
  for (const char* s : items) a.emplace_back(s);
  return a;
}

// "type" of an alert body, with ":<threshold>" for threshold crossings.
std::string summary(const json::value& alert) {
  if (!alert.is_object()) return "<not JSON>";
  std::string s = json_str(alert, {"type"});
  if (s == "spend.threshold_crossed") s += numbered(":", json_int(alert, {"data", "threshold_percent"}));
  return s;
}
std::vector<std::string> summaries(const std::vector<Post>& posts) {
  std::vector<std::string> out;
  for (const auto& p : posts) out.push_back(summary(p.doc()));
  return out;
}
std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return "[" + s + "]";
}
bool has_summary(const std::vector<Post>& posts, const std::string& what) {
  for (const auto& p : posts) {
    if (summary(p.doc()) == what) return true;
  }
  return false;
}

// Sleeps until the wall clock is early in a second (its fraction in [0.05, 0.25)).
void start_early_in_a_second() {
  for (;;) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count() % 1000;
    if (ms >= 50 && ms < 250) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(ms < 50 ? 50 - ms : 1050 - ms));
  }
}

// RFC 3339 UTC (as the API writes times) <-> unix seconds.
std::int64_t unix_of(const std::string& rfc3339) {
  std::tm tm{};
  if (!strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) ADD_FAILURE() << "not a time: " << rfc3339;
  return static_cast<std::int64_t>(timegm(&tm));
}
std::string rfc3339_of(std::int64_t unix) {
  const std::time_t t = static_cast<std::time_t>(unix);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool json_bool_at(const json::value& billing, const char* key) {
  const auto* cycle = billing.is_object() ? billing.as_object().if_contains("cycle") : nullptr;
  const auto* v = cycle && cycle->is_object() ? cycle->as_object().if_contains(key) : nullptr;
  if (!v || !v->is_bool()) {
    ADD_FAILURE() << "no cycle." << key << " in " << json::serialize(billing);
    return false;
  }
  return v->as_bool();
}

struct Hook {
  std::string id;
  std::string secret;
};

class Webhooks : public ::testing::Test {
 protected:
  void SetUp() override { boot({"--allow-private-webhooks"}); }

  void boot(std::vector<std::string> extra, std::map<std::string, std::string> env = {}) {
    std::vector<std::string> args{"--outbox", dir_.str("outbox")};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<CanopyProcess>(dir_.str("data"), args, std::move(env));
    server_->start();
    connect();
    owner_ = create_user(op(), "owner@example.com", "Owner");
    root_ = create_root(op(), owner_.id, "business", "Agency");
    admin_ = std::make_unique<Client>(server_->port(), owner_.token);
  }
  void connect() {
    op_ = std::make_unique<Client>(server_->port());
    if (!owner_.token.empty()) admin_ = std::make_unique<Client>(server_->port(), owner_.token);
  }
  // Stops the server (SIGKILL or SIGTERM) and starts it again on the same data folder.
  void restart(bool hard) {
    if (hard) {
      server_->kill9();
    } else {
      ASSERT_EQ(server_->terminate(), 0);
    }
    server_->start();
    connect();
  }

  Client& op() { return *op_; }
  Client& admin() { return *admin_; }

  Hook add_hook(const std::string& path, const json::value& events) {
    auto r = admin().post("/v1/orgs/" + root_ + "/webhooks", {{"url", rx_.url(path)}, {"events", events}});
    EXPECT_EQ(r.status, 201u) << r.body;
    return {json_str(r.json(), {"id"}), json_str(r.json(), {"secret"})};
  }
  void set_limit(std::optional<std::int64_t> limit) {
    auto r = admin().put("/v1/orgs/" + root_ + "/billing/spending-limit",
                         {{"monthly_limit_micros", limit ? json::value(*limit) : json::value(nullptr)}});
    ASSERT_EQ(r.status, 200u) << r.body;
  }
  void set_alerts(const json::value& body) {
    auto r = admin().put("/v1/orgs/" + root_ + "/alerts", body);
    ASSERT_EQ(r.status, 200u) << r.body;
  }
  HttpResult charge(const std::string& id, std::int64_t cost) {
    return admin().post("/v1/orgs/" + root_ + "/usage", event(id, cost));
  }
  // The delivery attempts of a webhook, newest first.
  json::array deliveries(const std::string& hook) {
    auto r = admin().get("/v1/orgs/" + root_ + "/webhooks/" + hook + "/deliveries");
    EXPECT_EQ(r.status, 200u) << r.body;
    const auto v = r.json();
    return v.is_object() && v.as_object().contains("data") && v.at("data").is_array() ? v.at("data").as_array()
                                                                                         : json::array{};
  }
  json::array wait_deliveries(const std::string& hook, const std::function<bool(const json::array&)>& done,
                              std::chrono::milliseconds limit = 10s) {
    const auto until = Clock::now() + limit;
    for (;;) {
      auto rows = deliveries(hook);
      if (done(rows) || Clock::now() >= until) return rows;
      std::this_thread::sleep_for(50ms);
    }
  }
  json::array payments_of_kind(const std::string& kind) {
    json::array out;
    const auto v = admin().get("/v1/orgs/" + root_ + "/billing/payments").json();
    for (const auto& row : v.at("data").as_array()) {
      if (json_str(row, {"kind"}) == kind) out.push_back(row);
    }
    return out;
  }

  TempDir dir_;
  Receiver rx_;
  std::unique_ptr<CanopyProcess> server_;
  std::unique_ptr<Client> op_;
  std::unique_ptr<Client> admin_;
  CreatedUser owner_;
  std::string root_;
};

// --- registration ---------------------------------------------------------------------------------------

TEST_F(Webhooks, RegisteringAWebhookShowsItsSecretOnceAndListsIt) {
  auto r = admin().post("/v1/orgs/" + root_ + "/webhooks",
                        {{"url", rx_.url("/hook")}, {"events", strings({"org.resumed", "balance.low"})}});
  ASSERT_EQ(r.status, 201u) << r.body;
  const auto created = r.json();
  const auto id = json_str(created, {"id"});
  EXPECT_TRUE(std::regex_match(id, std::regex("^wh_[0-9a-z]+$"))) << r.body;
  EXPECT_TRUE(std::regex_match(json_str(created, {"secret"}), std::regex("^whsec_[A-Za-z0-9_-]{16,}$"))) << r.body;
  EXPECT_EQ(json_str(created, {"webhook", "id"}), id);
  EXPECT_EQ(json_str(created, {"webhook", "url"}), rx_.url("/hook"));
  EXPECT_EQ(created.at("webhook").at("events"), strings({"balance.low", "org.resumed"})) << r.body;

  const auto got = admin().get("/v1/orgs/" + root_ + "/webhooks/" + id);
  ASSERT_EQ(got.status, 200u) << got.body;
  EXPECT_EQ(got.json(), created.at("webhook"));
  EXPECT_EQ(got.body.find("whsec_"), std::string::npos) << "the secret is shown only once";
  const auto list = admin().get("/v1/orgs/" + root_ + "/webhooks");
  ASSERT_EQ(list.status, 200u) << list.body;
  ASSERT_EQ(list.json().at("data").as_array().size(), 1u) << list.body;
  EXPECT_EQ(list.json().at("data").at(0), created.at("webhook"));
  EXPECT_EQ(list.body.find("whsec_"), std::string::npos);
  EXPECT_TRUE(deliveries(id).empty());
}

TEST_F(Webhooks, ARegistrationNamesKnownEventsAndOnlyAnAdminMayMakeOne) {
  auto r = admin().post("/v1/orgs/" + root_ + "/webhooks", {{"url", rx_.url("/h")}, {"events", strings({"balance.high"})}});
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(json_str(r.json(), {"error", "details", "field"}), "events") << r.body;
  r = admin().post("/v1/orgs/" + root_ + "/webhooks", {{"url", rx_.url("/h")}, {"events", json::array{}}});
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(json_str(r.json(), {"error", "details", "field"}), "events") << r.body;
  r = admin().post("/v1/orgs/" + root_ + "/webhooks", {{"url", "ftp://example.com/x"}, {"events", strings({"org.paused"})}});
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(json_str(r.json(), {"error", "details", "field"}), "url") << r.body;

  const auto other = create_user(op(), "other@example.com", "Other");
  Client stranger(server_->port(), other.token);
  r = stranger.post("/v1/orgs/" + root_ + "/webhooks", {{"url", rx_.url("/h")}, {"events", strings({"org.paused"})}});
  EXPECT_EQ(r.status, 404u) << r.body;
  EXPECT_EQ(admin().get("/v1/orgs/" + root_ + "/webhooks").json().at("data").as_array().size(), 0u);
}

// --- delivery ----------------------------------------------------------------------------------------------

TEST_F(Webhooks, AnAlertIsPostedAsSignedJsonWithItsIdTypeOrgTimeAndData) {
  const auto hook = add_hook("/hook", strings({"spend.threshold_crossed"}));
  set_limit(1'000'000);
  set_alerts({{"spend_percent_thresholds", {50}}});
  ASSERT_EQ(charge("e1", 500'000).status, 200u);

  const auto got = rx_.wait("/hook", [](const auto& p) { return !p.empty(); });
  ASSERT_EQ(got.size(), 1u);
  const Post& p = got[0];
  EXPECT_EQ(p.method, "POST");
  EXPECT_EQ(p.content_type.rfind("application/json", 0), 0u) << p.content_type;
  EXPECT_EQ(signature_problem(p, hook.secret), "") << p.signature;
  EXPECT_NE(signature_problem(p, hook.secret + "x"), "") << "the check must be able to fail";
  Post tampered = p;
  tampered.body[tampered.body.size() / 2] = static_cast<char>(tampered.body[tampered.body.size() / 2] ^ 1);
  EXPECT_NE(signature_problem(tampered, hook.secret), "");

  const auto body = p.doc();
  ASSERT_TRUE(body.is_object()) << p.body;
  EXPECT_EQ(body.as_object().size(), 5u) << "exactly {id, type, org_id, created_at, data}: " << p.body;
  EXPECT_TRUE(std::regex_match(json_str(body, {"id"}), std::regex("^evt_[0-9a-z]+$"))) << p.body;
  EXPECT_EQ(json_str(body, {"type"}), "spend.threshold_crossed");
  EXPECT_EQ(json_str(body, {"org_id"}), root_);
  EXPECT_TRUE(std::regex_match(json_str(body, {"created_at"}), std::regex(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$)"))) << p.body;
  EXPECT_EQ(json_int(body, {"data", "threshold_percent"}), 50);
  EXPECT_EQ(json_int(body, {"data", "cycle_spend_micros"}), 500'000);
  EXPECT_EQ(json_int(body, {"data", "monthly_spending_limit_micros"}), 1'000'000);

  const auto rows = wait_deliveries(hook.id, [](const json::array& r) { return !r.empty(); });
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(json_str(rows[0], {"alert_id"}), json_str(body, {"id"}));
  EXPECT_EQ(json_str(rows[0], {"type"}), "spend.threshold_crossed");
  EXPECT_EQ(json_int(rows[0], {"attempt"}), 1);
  EXPECT_EQ(json_str(rows[0], {"status"}), "succeeded");
  EXPECT_EQ(json_int(rows[0], {"http_status"}), 200);
  EXPECT_TRUE(rows[0].at("next_attempt_at").is_null()) << json::serialize(rows[0]);
}

TEST_F(Webhooks, ThresholdsFireOncePerCrossingNotOncePerEvent) {
  const auto hook = add_hook("/hook", strings({"spend.threshold_crossed", "org.paused"}));
  set_limit(1'000'000);
  set_alerts({{"spend_percent_thresholds", {50, 80, 100}}});
  for (int i = 1; i <= 20; ++i) ASSERT_EQ(charge(numbered("e", i), 50'000).status, 200u) << i;
  // The 20th charge reaches the limit exactly: it crosses 100 % and pauses, in that order. The outbox is
  // delivered in order, so once org.paused is in, every threshold alert before it is too.
  const auto got = rx_.wait("/hook", [](const auto& p) { return has_summary(p, "org.paused"); });
  EXPECT_EQ(summaries(got), (std::vector<std::string>{"spend.threshold_crossed:50", "spend.threshold_crossed:80",
                                                      "spend.threshold_crossed:100", "org.paused"}))
      << joined(summaries(got));
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(json_int(got[0].doc(), {"data", "cycle_spend_micros"}), 500'000);   // the 10th charge
  EXPECT_EQ(json_int(got[1].doc(), {"data", "cycle_spend_micros"}), 800'000);   // the 16th
  EXPECT_EQ(json_int(got[2].doc(), {"data", "cycle_spend_micros"}), 1'000'000);  // the 20th
  std::set<std::string> ids;
  for (const auto& p : got) {
    ids.insert(json_str(p.doc(), {"id"}));
    EXPECT_EQ(signature_problem(p, hook.secret), "");
  }
  EXPECT_EQ(ids.size(), got.size()) << "each alert has its own id";
}

TEST_F(Webhooks, BalanceLowFiresWhenTheBalanceFallsBelowTheLineAndAgainOnlyAfterItRecovered) {
  add_hook("/hook", strings({"balance.low", "org.paused"}));
  set_alerts({{"low_balance_micros", 2'000'000}});
  // 5.0 → 4.0 → 3.0 → 2.0 (at the line: not low) → 1.0 (low) → 0.5 (still low)
  for (int i = 1; i <= 4; ++i) ASSERT_EQ(charge(numbered("e", i), 1'000'000).status, 200u);
  ASSERT_EQ(charge("e5", 500'000).status, 200u);
  grant(op(), root_, 5'000'000);  // 5.5: recovered, no alert
  ASSERT_EQ(charge("e6", 4'000'000).status, 200u);  // 1.5: low again
  set_limit(1);  // sentinel: pauses at once (spend is past it)
  const auto got = rx_.wait("/hook", [](const auto& p) { return has_summary(p, "org.paused"); });
  EXPECT_EQ(summaries(got), (std::vector<std::string>{"balance.low", "balance.low", "org.paused"})) << joined(summaries(got));
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(json_int(got[0].doc(), {"data", "available_balance_micros"}), 1'000'000);
  EXPECT_EQ(json_int(got[0].doc(), {"data", "low_balance_micros"}), 2'000'000);
  EXPECT_EQ(json_int(got[1].doc(), {"data", "available_balance_micros"}), 1'500'000);
}

TEST_F(Webhooks, AnOrgPausedAtItsLimitReportsPausedOnceThenResumedWhenTheLimitIsRaised) {
  add_hook("/hook", strings({"org.paused", "org.resumed"}));
  set_limit(1'000'000);
  ASSERT_EQ(charge("e1", 900'000).status, 200u);
  auto r = charge("e2", 200'000);  // would pass the limit: refused, and the org pauses
  ASSERT_EQ(r.status, 409u) << r.body;
  r = charge("e3", 50'000);  // refused while paused: no second alert
  ASSERT_EQ(r.status, 409u) << r.body;
  set_limit(2'000'000);
  ASSERT_EQ(charge("e4", 50'000).status, 200u);
  const auto got = rx_.wait("/hook", [](const auto& p) { return has_summary(p, "org.resumed"); });
  EXPECT_EQ(summaries(got), (std::vector<std::string>{"org.paused", "org.resumed"})) << joined(summaries(got));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(json_int(got[0].doc(), {"data", "cycle_spend_micros"}), 900'000);
  EXPECT_EQ(json_int(got[0].doc(), {"data", "monthly_spending_limit_micros"}), 1'000'000);
  EXPECT_EQ(json_str(got[1].doc(), {"org_id"}), root_);
}

TEST_F(Webhooks, ASucceededAutoRechargeIsReportedWithItsPayment) {
  add_hook("/hook", strings({"auto_recharge.succeeded", "auto_recharge.failed"}));
  ASSERT_EQ(admin().put("/v1/orgs/" + root_ + "/billing/payment-method", card("4242")).status, 200u);
  ASSERT_EQ(admin()
                .put("/v1/orgs/" + root_ + "/billing/auto-recharge",
                     {{"enabled", true}, {"threshold_micros", 3'000'000}, {"amount_micros", 10'000'000}})
                .status,
            200u);
  ASSERT_EQ(charge("e1", 4'000'000).status, 200u);  // leaves 1.0 < 3.0: recharged by 10.0
  const auto got = rx_.wait("/hook", [](const auto& p) { return !p.empty(); });
  ASSERT_EQ(summaries(got), std::vector<std::string>{"auto_recharge.succeeded"}) << joined(summaries(got));
  const auto body = got[0].doc();
  EXPECT_EQ(json_int(body, {"data", "amount_micros"}), 10'000'000);
  const auto rows = payments_of_kind("auto_recharge");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(json_str(body, {"data", "payment_id"}), json_str(rows[0], {"id"}));
}

TEST_F(Webhooks, ADeclinedAutoRechargeIsReportedWithTheReason) {
  add_hook("/hook", strings({"auto_recharge.succeeded", "auto_recharge.failed"}));
  ASSERT_EQ(admin().put("/v1/orgs/" + root_ + "/billing/payment-method", card("0002")).status, 200u);
  ASSERT_EQ(admin()
                .put("/v1/orgs/" + root_ + "/billing/auto-recharge",
                     {{"enabled", true}, {"threshold_micros", 1'000'000}, {"amount_micros", 20'000'000}})
                .status,
            200u);
  auto r = charge("e1", 8'000'000);  // not covered; the recharge that would cover it is declined
  ASSERT_EQ(r.status, 402u) << r.body;
  const auto got = rx_.wait("/hook", [](const auto& p) { return !p.empty(); });
  ASSERT_EQ(summaries(got), std::vector<std::string>{"auto_recharge.failed"}) << joined(summaries(got));
  const auto body = got[0].doc();
  EXPECT_EQ(json_int(body, {"data", "amount_micros"}), 20'000'000);
  EXPECT_FALSE(json_str(body, {"data", "reason"}).empty()) << got[0].body;
  const auto rows = payments_of_kind("auto_recharge");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(json_str(rows[0], {"status"}), "failed");
  EXPECT_EQ(json_str(body, {"data", "payment_id"}), json_str(rows[0], {"id"}));
}

TEST_F(Webhooks, AWebhookGetsOnlyTheEventTypesItAskedFor) {
  add_hook("/low", strings({"balance.low"}));
  add_hook("/paused", strings({"org.paused"}));
  set_alerts({{"low_balance_micros", 2'000'000}});
  set_limit(4'000'000);
  ASSERT_EQ(charge("e1", 4'000'000).status, 200u);  // balance 1.0 (low) and the limit reached (paused)
  const auto low = rx_.wait("/low", [](const auto& p) { return !p.empty(); });
  const auto paused = rx_.wait("/paused", [](const auto& p) { return !p.empty(); });
  EXPECT_EQ(summaries(low), std::vector<std::string>{"balance.low"});
  EXPECT_EQ(summaries(paused), std::vector<std::string>{"org.paused"});
}

TEST_F(Webhooks, AWebSocketSubscriberAndAWebhookGetTheSameAlert) {
  add_hook("/hook", strings({"spend.threshold_crossed"}));
  set_limit(1'000'000);
  set_alerts({{"spend_percent_thresholds", {50}}});
  WsClient ws;
  ASSERT_TRUE(ws.connect(server_->port(), owner_.token));
  ws.send(json::value{{"op", "subscribe"}, {"org_id", root_}});
  ASSERT_TRUE(ws.read_type("subscribed"));
  ASSERT_EQ(charge("e1", 600'000).status, 200u);
  const auto pushed = ws.read_type("alert");
  ASSERT_TRUE(pushed);
  const auto got = rx_.wait("/hook", [](const auto& p) { return !p.empty(); });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(pushed->at("alert"), got[0].doc()) << json::serialize(*pushed) << "\n" << got[0].body;
}

// --- retries ------------------------------------------------------------------------------------------------

TEST_F(Webhooks, AFailingReceiverGetsTheSameEventAgainWithBackoffAndTheAttemptsAreListed) {
  const auto hook = add_hook("/hook", strings({"spend.threshold_crossed", "org.paused"}));
  rx_.fail("/hook", 2, 500);
  set_limit(1'000'000);
  set_alerts({{"spend_percent_thresholds", {50}}});
  ASSERT_EQ(charge("e1", 500'000).status, 200u);

  const auto got = rx_.wait("/hook", [](const auto& p) { return !p.empty() && p.back().answered == 200; });
  ASSERT_EQ(got.size(), 3u) << "2 failures, then the delivery";
  const auto id = json_str(got[0].doc(), {"id"});
  for (const auto& p : got) {
    EXPECT_EQ(json_str(p.doc(), {"id"}), id) << "a retry carries the same id";
    EXPECT_EQ(p.body, got[0].body) << "and the same event";
    EXPECT_EQ(signature_problem(p, hook.secret), "") << "and a valid signature";
  }

  const auto rows = wait_deliveries(hook.id, [](const json::array& r) { return r.size() >= 3; });
  ASSERT_EQ(rows.size(), 3u) << json::serialize(rows);
  // Newest first: the delivery, then the two failures.
  EXPECT_EQ(json_int(rows[0], {"attempt"}), 3);
  EXPECT_EQ(json_str(rows[0], {"status"}), "succeeded");
  EXPECT_EQ(json_int(rows[0], {"http_status"}), 200);
  EXPECT_TRUE(rows[0].at("error").is_null()) << json::serialize(rows[0]);
  EXPECT_TRUE(rows[0].at("next_attempt_at").is_null()) << json::serialize(rows[0]);
  for (std::size_t i = 1; i < 3; ++i) {
    EXPECT_EQ(json_int(rows[i], {"attempt"}), static_cast<std::int64_t>(3 - i));
    EXPECT_EQ(json_str(rows[i], {"status"}), "failed");
    EXPECT_EQ(json_int(rows[i], {"http_status"}), 500);
    EXPECT_NE(json_str(rows[i], {"error"}).find("500"), std::string::npos) << json::serialize(rows[i]);
  }
  for (const auto& row : rows) EXPECT_EQ(json_str(row, {"alert_id"}), id);
  // The backoff: 1 s after the first failure, 2 s after the second; no attempt before it was due.
  const auto seconds = [](const json::value& row, const char* key) { return unix_of(json_str(row, {key})); };
  EXPECT_EQ(seconds(rows[2], "next_attempt_at") - seconds(rows[2], "attempted_at"), 1);
  EXPECT_EQ(seconds(rows[1], "next_attempt_at") - seconds(rows[1], "attempted_at"), 2);
  EXPECT_GE(seconds(rows[1], "attempted_at"), seconds(rows[2], "next_attempt_at"));
  EXPECT_GE(seconds(rows[0], "attempted_at"), seconds(rows[1], "next_attempt_at"));

  // The list pages newest first.
  auto page = admin().get("/v1/orgs/" + root_ + "/webhooks/" + hook.id + "/deliveries?limit=2");
  ASSERT_EQ(page.status, 200u) << page.body;
  const auto first_page = page.json();
  ASSERT_EQ(first_page.at("data").as_array().size(), 2u) << page.body;
  EXPECT_EQ(first_page.at("data").at(0), rows[0]);
  EXPECT_EQ(first_page.at("data").at(1), rows[1]);
  ASSERT_TRUE(first_page.at("next_cursor").is_string()) << page.body;
  page = admin().get("/v1/orgs/" + root_ + "/webhooks/" + hook.id + "/deliveries?limit=2&cursor=" +
                     std::string(first_page.at("next_cursor").as_string()));
  ASSERT_EQ(page.status, 200u) << page.body;
  const auto second_page = page.json();
  ASSERT_EQ(second_page.at("data").as_array().size(), 1u) << page.body;
  EXPECT_EQ(second_page.at("data").at(0), rows[2]);
  EXPECT_TRUE(second_page.at("next_cursor").is_null()) << page.body;

  // Delivered means done: a later alert arrives, the first one not again.
  ASSERT_EQ(charge("e2", 500'000).status, 200u);  // reaches the limit: org.paused
  const auto after = rx_.wait("/hook", [](const auto& p) { return has_summary(p, "org.paused"); });
  EXPECT_EQ(summaries(after), (std::vector<std::string>{"spend.threshold_crossed:50", "spend.threshold_crossed:50",
                                                        "spend.threshold_crossed:50", "org.paused"}));
}

std::string stop_name(const ::testing::TestParamInfo<bool>& param) { return param.param ? "Kill9" : "Sigterm"; }

class WebhookRestart : public Webhooks, public ::testing::WithParamInterface<bool> {};

TEST_P(WebhookRestart, ARestartInTheMiddleOfTheRetriesStillDeliversTheSameEvent) {
  const bool hard = GetParam();
  const auto hook = add_hook("/hook", strings({"org.paused"}));
  rx_.fail("/hook", -1, 503);
  set_limit(1'000'000);
  ASSERT_EQ(charge("e1", 1'000'000).status, 200u);
  const auto failed = rx_.wait("/hook", [](const auto& p) { return !p.empty(); });
  ASSERT_FALSE(failed.empty());
  const auto id = json_str(failed[0].doc(), {"id"});

  restart(hard);
  rx_.heal("/hook");
  const auto got = rx_.wait("/hook", [](const auto& p) { return !p.empty() && p.back().answered == 200; }, 15s);
  ASSERT_FALSE(got.empty());
  ASSERT_EQ(got.back().answered, 200u) << "never delivered after the restart";
  for (const auto& p : got) {
    EXPECT_EQ(json_str(p.doc(), {"id"}), id) << "every attempt, before and after the restart, is the same event";
    EXPECT_EQ(p.body, failed[0].body);
    EXPECT_EQ(signature_problem(p, hook.secret), "");
  }
  const auto rows = wait_deliveries(hook.id, [](const json::array& r) {
    return !r.empty() && json_str(r[0], {"status"}) == "succeeded";
  });
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(json_str(rows[0], {"status"}), "succeeded") << json::serialize(rows);
  EXPECT_GE(rows.size(), hard ? 1u : 2u) << json::serialize(rows);  // kill -9 may lose the failed attempt's record
  for (const auto& row : rows) EXPECT_EQ(json_str(row, {"alert_id"}), id);
}

INSTANTIATE_TEST_SUITE_P(Stops, WebhookRestart, ::testing::Values(true, false),
                         stop_name);

TEST_F(Webhooks, ADeliveryCutShortByACrashIsSentAgainWithTheSameId) {
  const auto hook = add_hook("/hook", strings({"org.paused"}));
  rx_.hold("/hook");  // the receiver takes the POST in full, then the server dies before hearing back
  set_limit(1'000'000);
  ASSERT_EQ(charge("e1", 1'000'000).status, 200u);
  const auto first = rx_.wait("/hook", [](const auto& p) { return !p.empty(); });
  ASSERT_EQ(first.size(), 1u);
  server_->kill9();
  rx_.heal("/hook");
  server_->start();
  connect();

  const auto got = rx_.wait("/hook", [](const auto& p) { return p.size() >= 2 && p.back().answered == 200; });
  ASSERT_EQ(got.size(), 2u) << "the duplicate a receiver must expect, and dedupe by id";
  EXPECT_EQ(json_str(got[1].doc(), {"id"}), json_str(first[0].doc(), {"id"}));
  EXPECT_EQ(got[1].body, first[0].body);
  EXPECT_EQ(signature_problem(got[1], hook.secret), "");
  const auto rows = wait_deliveries(hook.id, [](const json::array& r) {
    return !r.empty() && json_str(r[0], {"status"}) == "succeeded";
  });
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(json_str(rows[0], {"status"}), "succeeded") << json::serialize(rows);
  EXPECT_EQ(json_str(rows[0], {"alert_id"}), json_str(first[0].doc(), {"id"}));
}

// --- the manual clock: cycles and the 24 h retry window ---------------------------------------------------
// The manual clock stands still until moved, so retries come due exactly when the test says.

class WebhookManualClock : public Webhooks {
 protected:
  void SetUp() override { boot({"--allow-private-webhooks", "--clock", "manual"}); }
  void set_clock(std::int64_t unix) {
    auto r = op().post("/v1/admin/clock", {{"now", rfc3339_of(unix)}});
    ASSERT_EQ(r.status, 200u) << r.body;
  }
};

TEST_F(WebhookManualClock, AfterTwentyFourHoursOfFailuresTheDeliveryIsGivenUp) {
  const auto hook = add_hook("/hook", strings({"org.paused", "org.resumed"}));
  rx_.fail("/hook", -1, 500);
  set_limit(1'000'000);
  ASSERT_EQ(charge("e1", 1'000'000).status, 200u);  // org.paused at T
  auto got = rx_.wait("/hook", [](const auto& p) { return !p.empty(); });
  ASSERT_EQ(got.size(), 1u);
  const auto id = json_str(got[0].doc(), {"id"});
  const auto t = unix_of(json_str(got[0].doc(), {"created_at"}));
  EXPECT_EQ(rx_.posts("/hook").size(), 1u) << "the retry waits for its time";

  set_clock(t + 1);  // the first retry is due 1 s after the first failure
  got = rx_.wait("/hook", [](const auto& p) { return p.size() >= 2; });
  ASSERT_EQ(got.size(), 2u);

  set_clock(t + 24 * 3600 + 1);  // past the 24 h window: the last try, then no more
  const auto rows = wait_deliveries(hook.id, [](const json::array& r) {
    return r.size() >= 3 && r[0].at("next_attempt_at").is_null();
  });
  ASSERT_EQ(rows.size(), 3u) << json::serialize(rows);
  EXPECT_EQ(json_str(rows[0], {"status"}), "failed");
  EXPECT_TRUE(rows[0].at("next_attempt_at").is_null()) << "given up: " << json::serialize(rows[0]);
  EXPECT_FALSE(rows[1].at("next_attempt_at").is_null()) << "still retrying within the window: " << json::serialize(rows[1]);

  // However much later, it is not tried again: a later alert arrives alone.
  rx_.heal("/hook");
  set_clock(t + 48 * 3600);
  set_limit(2'000'000);  // org.resumed
  const auto after = rx_.wait("/hook", [](const auto& p) { return has_summary(p, "org.resumed"); });
  EXPECT_EQ(summaries(after), (std::vector<std::string>{"org.paused", "org.paused", "org.paused", "org.resumed"}));
  // The receiver sees a post before its attempt is journaled: wait for the record (bounded).
  const auto all = wait_deliveries(hook.id, [](const json::array& r) { return r.size() >= 4; });
  EXPECT_EQ(all.size(), 4u) << json::serialize(all);
}

// At each cycle start paused orgs resume (CONTRACT.md "Billing"): that is a crossing, reported then,
// not whenever the next write happens to reach the org (a client that stopped on org.paused waits for it).
TEST_F(WebhookManualClock, ANewCycleResumesAPausedOrgAndReportsItWithoutWaitingForAWrite) {
  add_hook("/hook", strings({"org.paused", "org.resumed"}));
  set_limit(1'000'000);
  ASSERT_EQ(charge("e1", 1'000'000).status, 200u);
  ASSERT_EQ(summaries(rx_.wait("/hook", [](const auto& p) { return !p.empty(); })),
            std::vector<std::string>{"org.paused"});
  const auto end = json_str(admin().get("/v1/orgs/" + root_ + "/billing").json(), {"cycle", "end"});
  set_clock(unix_of(end));
  ASSERT_FALSE(json_bool_at(admin().get("/v1/orgs/" + root_ + "/billing").json(), "paused")) << "reads show it resumed";

  const auto got = rx_.wait("/hook", [](const auto& p) { return has_summary(p, "org.resumed"); }, 5s);
  EXPECT_EQ(summaries(got), (std::vector<std::string>{"org.paused", "org.resumed"}))
      << "no org.resumed within 5 s of the cycle start";
  if (got.size() == 2) {
    EXPECT_EQ(json_str(got[1].doc(), {"created_at"}), end) << "it happened at the cycle start";
  }
}

// --- deletion ---------------------------------------------------------------------------------------------

TEST_F(Webhooks, ADeletedWebhookGetsNothingMoreNotEvenItsPendingRetries) {
  const auto a = add_hook("/a", strings({"spend.threshold_crossed"}));
  add_hook("/b", strings({"spend.threshold_crossed"}));
  set_limit(1'000'000);
  set_alerts({{"spend_percent_thresholds", {10, 20, 30}}});
  rx_.fail("/a", -1, 500);
  // Retries are scheduled in whole seconds (1 s after a failure at X.f is due at X+1): start early in a
  // second so A's retry is still most of a second away when A is deleted.
  start_early_in_a_second();
  ASSERT_EQ(charge("e1", 100'000).status, 200u);  // 10 %: A fails and has a retry pending, B gets it
  const auto a_before = rx_.wait("/a", [](const auto& p) { return !p.empty(); });
  ASSERT_EQ(a_before.size(), 1u);
  ASSERT_EQ(rx_.wait("/b", [](const auto& p) { return !p.empty(); }).size(), 1u);
  const auto deleted_at = Clock::now();

  auto r = admin().del("/v1/orgs/" + root_ + "/webhooks/" + a.id);
  ASSERT_EQ(r.status, 204u) << r.body;
  ASSERT_EQ(rx_.posts("/a").size(), 1u) << "A's retry came before it could be deleted; the test lost its race";
  rx_.heal("/a");  // from now on A would accept: anything it gets is a delivery it should not have had
  EXPECT_EQ(admin().get("/v1/orgs/" + root_ + "/webhooks/" + a.id).status, 404u);
  EXPECT_EQ(admin().get("/v1/orgs/" + root_ + "/webhooks/" + a.id + "/deliveries").status, 404u);
  EXPECT_EQ(admin().del("/v1/orgs/" + root_ + "/webhooks/" + a.id).status, 404u);

  ASSERT_EQ(charge("e2", 100'000).status, 200u);  // 20 %
  ASSERT_EQ(charge("e3", 100'000).status, 200u);  // 30 %
  const auto b = rx_.wait("/b", [](const auto& p) { return has_summary(p, "spend.threshold_crossed:30"); });
  EXPECT_EQ(summaries(b), (std::vector<std::string>{"spend.threshold_crossed:10", "spend.threshold_crossed:20",
                                                    "spend.threshold_crossed:30"}));
  // A's retry was due 1 s after its failure; give it that plus a few polls before looking.
  const auto look_at = deleted_at + 2500ms;
  if (Clock::now() < look_at) std::this_thread::sleep_for(look_at - Clock::now());
  EXPECT_EQ(rx_.posts("/a").size(), 1u) << joined(summaries(rx_.posts("/a")));
}

// --- the SSRF guard --------------------------------------------------------------------------------------

class WebhookGuard : public Webhooks {
 protected:
  void SetUp() override { boot({}); }
};

TEST_F(WebhookGuard, UrlsOnLoopbackPrivateOrLinkLocalAddressesAreRefusedNamingUrl) {
  const std::string port = std::to_string(rx_.port());
  const std::vector<std::string> refused = {
       "http://127.0.0.1:" + port + "/hook", "http://localhost:" + port + "/hook", "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/", "http://192.168.1.1/hook", "http://172.16.0.1/hook",
        "http://100.64.0.1/hook", "http://0.0.0.0:" + port + "/hook", "http://[::1]:" + port + "/hook",
        "http://[::ffff:127.0.0.1]:" + port + "/hook", "http://[fe80::1]/hook", "http://[fd00::1]/hook",
        "http://2130706433:" + port + "/hook", "http://0x7f.1:" + port + "/hook", "https://127.0.0.1/hook",
        // IPv4 carried in IPv6 (NAT64, 6to4, the old compatible form), reserved IPv4 ranges, port 0
        "http://[64:ff9b::7f00:1]:" + port + "/hook", "http://[2002:7f00:1::]:" + port + "/hook",
        "http://[::127.0.0.1]:" + port + "/hook", "http://192.0.0.1/hook", "http://198.18.0.1/hook",
        "http://203.0.113.10:0/hook"};
  for (const auto& url : refused) {
    auto r = admin().post("/v1/orgs/" + root_ + "/webhooks", {{"url", url}, {"events", strings({"org.paused"})}});
    EXPECT_EQ(r.status, 400u) << url << " -> " << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request") << url << " -> " << r.body;
    EXPECT_EQ(json_str(r.json(), {"error", "details", "field"}), "url") << url << " -> " << r.body;
  }
  EXPECT_EQ(admin().get("/v1/orgs/" + root_ + "/webhooks").json().at("data").as_array().size(), 0u);

  // A public address is accepted (registration sends nothing; no alert fires here).
  auto ok = admin().post("/v1/orgs/" + root_ + "/webhooks",
                         {{"url", "https://203.0.113.10/hooks/canopy"}, {"events", strings({"org.paused"})}});
  EXPECT_EQ(ok.status, 201u) << ok.body;
  EXPECT_TRUE(rx_.posts("/hook").empty());
}

// --- a resolver that stalls -------------------------------------------------------------------------

class WebhookStalledDns : public Webhooks {
 protected:
  void SetUp() override {
    // The stalling resolver is preloaded ahead of a sanitizer runtime, which must be told to accept it.
    std::string asan = "verify_asan_link_order=0";
    if (const char* given = std::getenv("ASAN_OPTIONS")) asan = std::string(given) + ":" + asan;
    boot({}, {{"LD_PRELOAD", CANOPY_STALLED_DNS_PATH}, {"ASAN_OPTIONS", asan}});
  }
};

// A webhook's host is resolved when it is registered; a resolver that takes its timeout (2 s here)
// delays that registration only, not the requests of everyone else.
TEST_F(WebhookStalledDns, ALookupThatStallsHoldsOnlyItsOwnRequestNotTheServer) {
  auto stalled = std::async(std::launch::async, [this] {
    Client own(server_->port(), owner_.token);
    return own.post("/v1/orgs/" + root_ + "/webhooks",
                    {{"url", "https://hooks.stall.test/canopy"}, {"events", strings({"org.paused"})}});
  });
  std::this_thread::sleep_for(300ms);  // the registration is in its lookup by now
  const auto started = Clock::now();
  EXPECT_EQ(op().get("/healthz").status, 200u);
  EXPECT_EQ(admin().get("/v1/orgs/" + root_ + "/webhooks").status, 200u);
  EXPECT_LT(Clock::now() - started, 1000ms) << "other requests waited for the stalled lookup";
  const auto r = stalled.get();
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(json_str(r.json(), {"error", "details", "field"}), "url") << r.body;
  EXPECT_NE(r.body.find("does not resolve"), std::string::npos) << r.body;
}

}  // namespace
}  // namespace canopy::test
