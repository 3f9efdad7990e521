// Goal: members, invitations, roles and customization end to end, as a client (and an invitee's mail
// box) sees them (CONTRACT.md "Roles and access", "Users and bootstrap", "Members", "Customization and
// domain"; docs/openapi.yaml).
//
// An invitation is branded by the org it invites to (never its parent) and travels by real SMTP (to an
// aiosmtpd sink this test starts) or, without an SMTP server, as an .eml file in the outbox. Its link
// is single use, expires, can be revoked, and joins a new user, the user with the invited email or the
// signed-in user. Managers invite and manage non-admins only; a root always keeps an admin, a sub-org
// need not (its ancestors' admins oversee it). An ancestor admin may take a direct role in a sub-org;
// nobody promotes themselves. The members list pages across members and invitations. Fields a caller
// may not set are refused with 400 naming the field, and nothing changes. Everything survives kill -9.
// Rules that guard state (last admin, a manager never touching an admin, one use per link) also hold
// under concurrent requests.
//
// Needs /usr/bin/python3 with aiosmtpd (Debian: python3-aiosmtpd) for support/smtp_sink.py, found next
// to this file (or at $CANOPY_SMTP_SINK); it also parses the outbox's .eml files.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/e2e/harness.hpp"

namespace canopy::test {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* public_url = "https://console.canopy.test";
constexpr const char* python = "/usr/bin/python3";  // Debian's, with python3-aiosmtpd

const std::regex invitation_id_pattern("^inv_[0-9a-hjkmnp-tv-z]{13}$");
const std::regex user_id_pattern("^usr_[0-9a-hjkmnp-tv-z]{13}$");
const std::regex user_token_pattern("^cu_[A-Za-z0-9_-]+$");
const std::regex invite_link_pattern("^https://console\\.canopy\\.test/invite/ci_[A-Za-z0-9_-]+$");
const std::regex rfc3339_pattern("^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z$");

const std::set<std::string> member_keys{"user_id", "name", "email", "role", "status"};
const std::set<std::string> invited_keys{"user_id", "name",          "email",     "role",
                                         "status",  "invitation_id", "expires_at"};

std::string sink_script() {
  if (const char* env = std::getenv("CANOPY_SMTP_SINK")) return env;
  return (fs::path(__FILE__).parent_path() / "support" / "smtp_sink.py").string();
}

std::set<std::string> keys_of(const json::value& v) {
  std::set<std::string> keys;
  if (!v.is_object()) return keys;
  for (const auto& [k, _] : v.as_object()) keys.insert(std::string(k));
  return keys;
}

bool has(const json::value& v, const char* key) { return v.is_object() && v.as_object().contains(key); }

std::string error_field(const HttpResult& r) {
  const auto v = r.json();
  const auto* e = v.is_object() ? v.as_object().if_contains("error") : nullptr;
  const auto* d = e && e->is_object() ? e->as_object().if_contains("details") : nullptr;
  const auto* f = d && d->is_object() ? d->as_object().if_contains("field") : nullptr;
  return f && f->is_string() ? std::string(f->as_string()) : "";
}

std::string token_of(const std::string& link) {
  const auto at = link.rfind("/invite/");
  return at == std::string::npos ? "" : link.substr(at + 8);
}

std::string host_of(const std::string& url) {
  const auto start = url.find("://");
  if (start == std::string::npos) return "";
  const auto rest = url.substr(start + 3);
  return rest.substr(0, rest.find_first_of("/:?#"));
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits (bounded) until `p` exists; the mailer delivers after the 201.
bool wait_for_file(const fs::path& p, std::chrono::milliseconds limit = 15s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (fs::exists(p)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return fs::exists(p);
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Runs the sink script in --parse mode on an .eml file: the same parser reads SMTP and outbox mail.
json::value parse_eml(const fs::path& eml) {
  const std::string cmd = std::string(python) + " '" + sink_script() + "' --parse '" + eml.string() + "'";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) {
    ADD_FAILURE() << "popen failed: " << cmd;
    return nullptr;
  }
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  const int rc = ::pclose(pipe);
  boost::system::error_code ec;
  auto v = json::parse(out, ec);
  if (rc != 0 || ec) {
    ADD_FAILURE() << "cannot parse " << eml << " (exit " << rc << "): " << out;
    return nullptr;
  }
  return v;
}

// A loopback port nothing listens on (just now).
std::uint16_t unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "cannot find a free port";
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The value of an unlabelled counter in GET /metrics, or -1.
long long metric(Client& c, const std::string& name) {
  const auto body = c.get("/metrics").body;
  const auto at = body.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stoll(body.substr(at + name.size() + 2));
}

// A real SMTP server (aiosmtpd) in a child process: every message it receives becomes
// <out_dir>/<n>.json (see support/smtp_sink.py).
class SmtpSink {
 public:
  // `port` 0: the sink picks a free one.
  SmtpSink(fs::path out_dir, fs::path log, std::uint16_t port = 0)
      : out_dir_(std::move(out_dir)), log_(std::move(log)), port_(port) {}
  ~SmtpSink() { stop(); }
  SmtpSink(const SmtpSink&) = delete;
  SmtpSink& operator=(const SmtpSink&) = delete;

  // Starts the sink and waits (at most 15 s) for the "port N" line. False (with a failure added) if
  // it does not come up.
  bool start() {
    int fds[2];
    if (::pipe(fds) != 0) {
      ADD_FAILURE() << "pipe failed";
      return false;
    }
    const std::string script = sink_script();
    const std::string out = out_dir_.string();
    const std::string log = log_.string();
    const std::string port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) ::dup2(err, 2);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execl(python, "python3", script.c_str(), out.c_str(), port.c_str(), static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    ::close(fds[1]);
    const int fd = fds[0];
    std::string got;
    const auto until = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        char buf[256];
        const auto n = ::read(fd, buf, sizeof buf);
        if (n > 0) got.append(buf, static_cast<std::size_t>(n));
        if (n == 0) break;  // the child closed stdout: it died
      }
      const auto line_end = got.find('\n');
      if (got.starts_with("port ") && line_end != std::string::npos) {
        port_ = static_cast<std::uint16_t>(std::stoi(got.substr(5, line_end - 5)));
        ::close(fd);
        return true;
      }
    }
    ::close(fd);
    ADD_FAILURE() << "the SMTP sink (" << python << " " << script << ") did not start; stdout: " << got
                  << "; stderr: " << read_text(log_);
    stop();
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (::waitpid(pid_, &status, WNOHANG) != pid_) {
      if (std::chrono::steady_clock::now() > until) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
    pid_ = -1;
  }

  std::uint16_t port() const { return port_; }
  const fs::path& out_dir() const { return out_dir_; }
  std::string log() const { return read_text(log_); }

 private:
  fs::path out_dir_;
  fs::path log_;
  int pid_ = -1;
  std::uint16_t port_ = 0;
};

// The node for `id` anywhere in a switcher tree, or null.
const json::value* find_org(const json::value& orgs, const std::string& id) {
  if (!orgs.is_array()) return nullptr;
  for (const auto& o : orgs.as_array()) {
    if (has(o, "id") && o.at("id").is_string() && o.at("id").as_string() == id) return &o;
    if (has(o, "sub_organizations")) {
      if (const auto* found = find_org(o.at("sub_organizations"), id)) return found;
    }
  }
  return nullptr;
}

const json::value* find_row(const json::array& rows, const char* key, const std::string& value) {
  for (const auto& r : rows) {
    if (has(r, key) && r.at(key).is_string() && r.at(key).as_string() == value) return &r;
  }
  return nullptr;
}

struct Joined {
  std::string id;
  std::string token;  // empty when the invitation joined an existing user
};

// One server with one tenant ("Agency", business plan, owned by owner@example.com), an outbox and a
// public URL of https://console.canopy.test. Each test boots its own.
class Members : public ::testing::Test {
 protected:
  void boot(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--outbox", outbox().string(), "--public-url", public_url};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<CanopyProcess>(dir_.str("data"), std::move(args));
    server_->start();
    op_ = std::make_unique<Client>(server_->port());
    owner = create_user(op(), "owner@example.com", "Owner");
    root = create_root(op(), owner.id, "business", "Agency");
    connect();
  }

  void connect() {
    op_ = std::make_unique<Client>(server_->port());
    admin_ = std::make_unique<Client>(server_->port(), owner.token);
    anon_ = std::make_unique<Client>(server_->port(), "");
  }

  // SIGKILL (or SIGTERM) and start again on the same data folder; the clients reconnect.
  void restart(bool kill9) {
    if (kill9) {
      server_->kill9();
    } else {
      EXPECT_EQ(server_->terminate(), 0) << server_->output();
    }
    server_->start();
    connect();
  }

  fs::path outbox() const { return dir_.path() / "outbox"; }
  Client& op() { return *op_; }
  Client& admin() { return *admin_; }
  Client& anon() { return *anon_; }
  std::unique_ptr<Client> as(const std::string& token) { return std::make_unique<Client>(server_->port(), token); }

  HttpResult invite(Client& by, const std::string& org, const std::string& email, const std::string& role) {
    return by.post("/v1/orgs/" + org + "/invitations", {{"email", email}, {"role", role}});
  }
  // Invites as the owner (or `by`) and answers the invitation's body; fails the test on anything but 201.
  json::value invited(const std::string& org, const std::string& email, const std::string& role,
                      Client* by = nullptr) {
    const auto r = invite(by ? *by : admin(), org, email, role);
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.json();
  }
  std::string invite_token(const std::string& org, const std::string& email, const std::string& role,
                           Client* by = nullptr) {
    const auto body = invited(org, email, role, by);
    return has(body, "link") && body.at("link").is_string() ? token_of(std::string(body.at("link").as_string())) : "";
  }

  HttpResult accept(const std::string& token, const std::optional<json::value>& body = std::nullopt,
                    const std::string& bearer = "") {
    Client c(server_->port(), bearer);
    return c.request("POST", "/v1/invitations/" + token + "/accept", body ? json::serialize(*body) : std::string());
  }

  // A user the operator creates, invited to `org` as `role`, who accepts without a token (joined by
  // the invited email).
  Joined join(const std::string& org, const std::string& email, const std::string& role,
              const std::string& name = "Member") {
    const auto user = create_user(op(), email, name);
    const auto token = invite_token(org, email, role);
    const auto r = accept(token);
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.json(), json::value({{"user_id", user.id}, {"org_id", org}, {"role", role}}));
    return {user.id, user.token};
  }

  json::array members(const std::string& org, Client* by = nullptr) {
    const auto r = (by ? *by : op()).get("/v1/orgs/" + org + "/members?limit=500");
    EXPECT_EQ(r.status, 200u) << r.body;
    const auto v = r.json();
    if (!has(v, "data") || !v.at("data").is_array()) {
      ADD_FAILURE() << "no data array: " << r.body;
      return {};
    }
    EXPECT_TRUE(has(v, "next_cursor") && v.at("next_cursor").is_null()) << r.body;
    return v.at("data").as_array();
  }

  // The role `user_id` has in `org` per the members list, or "" if not an active member.
  std::string role_in(const std::string& org, const std::string& user_id) {
    const auto rows = members(org);
    for (const auto& r : rows) {
      if (has(r, "user_id") && r.at("user_id").is_string() && r.at("user_id").as_string() == user_id &&
          json_str(r, {"status"}) == "active") {
        return json_str(r, {"role"});
      }
    }
    return "";
  }

  std::size_t invited_count(const std::string& org) {
    const auto rows = members(org);
    return static_cast<std::size_t>(std::count_if(rows.begin(), rows.end(), [](const json::value& r) {
      return has(r, "status") && r.at("status") == json::value("invited");
    }));
  }

  std::string sub(const std::string& name = "Client Co") { return create_sub_org(admin(), root, name); }

  void set_clock(const std::string& now) {
    const auto r = op().post("/v1/admin/clock", {{"now", now}});
    ASSERT_EQ(r.status, 200u) << r.body;
  }

  TempDir dir_;
  std::unique_ptr<CanopyProcess> server_;
  std::unique_ptr<Client> op_, admin_, anon_;
  CreatedUser owner;
  std::string root;
};

// ------------------------------------------------------------------------------------------------
// Delivery: SMTP and the outbox
// ------------------------------------------------------------------------------------------------

TEST_F(Members, SmtpDeliveryIsBrandedByTheSubOrgAndItsLinkSignsTheInviteeUp) {
  SmtpSink sink(dir_.path() / "smtp", dir_.path() / "smtp.log");
  ASSERT_TRUE(sink.start());
  boot({"--smtp-url", "smtp://127.0.0.1:" + std::to_string(sink.port())});

  // The parent has branding of its own; the sub-org's must be the one used.
  ASSERT_EQ(admin()
                .put("/v1/orgs/" + root + "/customization",
                     {{"name", "Parent Holdings"},
                      {"logo_url", "https://cdn.parent.test/parent.png"},
                      {"contact_email", "parent@parent.test"}})
                .status,
            200u);
  const auto client = sub("Client Co");
  const auto brand = admin().put("/v1/orgs/" + client + "/customization",
                                 {{"name", "Acme Agency"},
                                  {"logo_url", "https://cdn.acme.test/logo.png"},
                                  {"contact_email", "hello@acme.test"}});
  ASSERT_EQ(brand.status, 200u) << brand.body;

  const auto r = invite(admin(), client, "new.hire@client.test", "developer");
  ASSERT_EQ(r.status, 201u) << r.body;
  const auto body = r.json();
  EXPECT_EQ(keys_of(body), (std::set<std::string>{"id", "org_id", "role", "status", "expires_at", "link", "email"}));
  EXPECT_TRUE(std::regex_match(json_str(body, {"id"}), invitation_id_pattern)) << r.body;
  EXPECT_EQ(json_str(body, {"org_id"}), client);
  EXPECT_EQ(json_str(body, {"role"}), "developer");
  EXPECT_EQ(json_str(body, {"status"}), "pending");
  EXPECT_TRUE(std::regex_match(json_str(body, {"expires_at"}), rfc3339_pattern)) << r.body;
  const std::string link = json_str(body, {"link"});
  EXPECT_TRUE(std::regex_match(link, invite_link_pattern)) << link;
  EXPECT_EQ(keys_of(body.at("email")), (std::set<std::string>{"from", "to", "subject", "html"}));
  EXPECT_EQ(json_str(body, {"email", "from"}), "\"Acme Agency\" <hello@acme.test>");
  EXPECT_EQ(json_str(body, {"email", "to"}), "new.hire@client.test");
  EXPECT_EQ(json_str(body, {"email", "subject"}), "You're invited to join Acme Agency");
  const std::string answered_html = json_str(body, {"email", "html"});
  EXPECT_NE(answered_html.find("<img src=\"https://cdn.acme.test/logo.png\""), std::string::npos) << answered_html;
  EXPECT_NE(answered_html.find(link), std::string::npos) << answered_html;

  // What the SMTP server received.
  const auto message_file = sink.out_dir() / "1.json";
  ASSERT_TRUE(wait_for_file(message_file)) << "no message reached the SMTP sink; canopy: " << server_->output()
                                           << "\nsink: " << sink.log();
  const auto mail = json::parse(read_text(message_file));
  EXPECT_EQ(json_str(mail, {"mail_from"}), "hello@acme.test");
  EXPECT_EQ(mail.at("rcpt_tos"), json::value(json::array{"new.hire@client.test"}));
  EXPECT_EQ(json_str(mail, {"from"}), "\"Acme Agency\" <hello@acme.test>");
  EXPECT_EQ(json_str(mail, {"from_name"}), "Acme Agency");
  EXPECT_EQ(json_str(mail, {"from_address"}), "hello@acme.test");
  EXPECT_EQ(json_str(mail, {"to"}), "new.hire@client.test");
  EXPECT_EQ(json_str(mail, {"subject"}), "You're invited to join Acme Agency");
  const std::string html = json_str(mail, {"html"});
  EXPECT_NE(html.find("<img src=\"https://cdn.acme.test/logo.png\""), std::string::npos) << html;
  EXPECT_EQ(html.find("cdn.parent.test"), std::string::npos) << "the parent's logo leaked: " << html;
  EXPECT_EQ(html.find("Parent Holdings"), std::string::npos) << "the parent's name leaked: " << html;
  EXPECT_EQ(html, answered_html);
  EXPECT_NE(json_str(mail, {"text"}).find(link), std::string::npos) << json_str(mail, {"text"});

  // The link in the mail: on the public URL's host, the same as the API answered.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(html, m, std::regex("href=\"(https?://[^\"]+/invite/[^\"]+)\""))) << html;
  const std::string mailed_link = m[1].str();
  EXPECT_EQ(mailed_link, link);
  EXPECT_EQ(host_of(mailed_link), host_of(public_url));

  // With SMTP configured nothing goes to the outbox.
  EXPECT_TRUE(files_in(outbox()).empty());

  // The invitee follows the link from the mail.
  const auto accepted = accept(token_of(mailed_link), json::value{{"name", "New Hire"}});
  ASSERT_EQ(accepted.status, 200u) << accepted.body;
  const auto a = accepted.json();
  EXPECT_EQ(keys_of(a), (std::set<std::string>{"user_id", "org_id", "role", "token"}));
  EXPECT_TRUE(std::regex_match(json_str(a, {"user_id"}), user_id_pattern)) << accepted.body;
  EXPECT_EQ(json_str(a, {"org_id"}), client);
  EXPECT_EQ(json_str(a, {"role"}), "developer");
  auto hire = as(json_str(a, {"token"}));
  const auto me = hire->get("/v1/me");
  ASSERT_EQ(me.status, 200u) << me.body;
  const auto me_json = me.json();
  EXPECT_EQ(json_str(me_json, {"email"}), "new.hire@client.test");
  EXPECT_EQ(json_str(me_json, {"name"}), "New Hire");
  const auto& orgs = me_json.at("organizations").as_array();
  ASSERT_EQ(orgs.size(), 1u) << me.body;
  EXPECT_EQ(json_str(orgs[0], {"id"}), client);
  EXPECT_EQ(json_str(orgs[0], {"name"}), "Acme Agency");
  EXPECT_EQ(json_str(orgs[0], {"role"}), "developer");
  // Exactly one message was sent.
  EXPECT_EQ(files_in(sink.out_dir()), (std::vector<std::string>{"1.json"}));
}

TEST_F(Members, WithoutSmtpTheMailIsAnEmlFileInTheOutboxNamedByTheInvitationId) {
  boot();
  ASSERT_EQ(admin()
                .put("/v1/orgs/" + root + "/customization",
                     {{"name", "Agency"}, {"logo_url", "https://cdn.agency.test/a.png"}, {"contact_email", "Team@Agency.test"}})
                .status,
            200u);
  const auto body = invited(root, "Pat@Example.com", "agent");
  const std::string id = json_str(body, {"id"});
  const auto eml = outbox() / (id + ".eml");
  ASSERT_TRUE(wait_for_file(eml)) << "outbox: " << outbox() << "\n" << server_->output();
  const auto mail = parse_eml(eml);
  EXPECT_EQ(json_str(mail, {"from"}), "\"Agency\" <team@agency.test>");
  EXPECT_EQ(json_str(mail, {"to"}), "pat@example.com");
  EXPECT_EQ(json_str(mail, {"subject"}), "You're invited to join Agency");
  const std::string html = json_str(mail, {"html"});
  EXPECT_NE(html.find("<img src=\"https://cdn.agency.test/a.png\""), std::string::npos) << html;
  EXPECT_NE(html.find(json_str(body, {"link"})), std::string::npos) << html;
  EXPECT_EQ(json_str(body, {"email", "to"}), "pat@example.com");

  // An org without a contact email sends from the default sender on the public URL's host.
  const auto plain = sub("Plain Co");
  const auto second = invited(plain, "sam@example.com", "developer");
  const auto eml2 = outbox() / (json_str(second, {"id"}) + ".eml");
  ASSERT_TRUE(wait_for_file(eml2)) << server_->output();
  const auto mail2 = parse_eml(eml2);
  EXPECT_EQ(json_str(mail2, {"from"}), "\"Plain Co\" <no-reply@console.canopy.test>");
  EXPECT_EQ(json_str(second, {"email", "from"}), "\"Plain Co\" <no-reply@console.canopy.test>");
  EXPECT_EQ(json_str(mail2, {"subject"}), "You're invited to join Plain Co");
  EXPECT_EQ(json_str(mail2, {"html"}).find("<img"), std::string::npos) << "no logo set, no image";

  // Only the two messages, no temporary files left behind.
  EXPECT_EQ(files_in(outbox()), (std::vector<std::string>{std::min(id, json_str(second, {"id"})) + ".eml",
                                                           std::max(id, json_str(second, {"id"})) + ".eml"}));
}

TEST_F(Members, NonAsciiBrandNamesAreEncodedInTheHeadersAndDecodeBack) {
  boot();
  const std::string name = "Caf\xc3\xa9 \xc3\x91" "and\xc3\xba \xe2\x80\x94 Agencia";  // Café Ñandú — Agencia
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/customization", {{"name", name}, {"contact_email", "hola@cafe.test"}}).status,
            200u);
  const auto body = invited(root, "ana@example.com", "agent");
  const auto eml = outbox() / (json_str(body, {"id"}) + ".eml");
  ASSERT_TRUE(wait_for_file(eml)) << server_->output();
  // Headers on the wire are 7-bit.
  const std::string raw = read_text(eml);
  const std::string headers = raw.substr(0, raw.find("\r\n\r\n"));
  EXPECT_TRUE(std::all_of(headers.begin(), headers.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
      << headers;
  const auto mail = parse_eml(eml);
  EXPECT_EQ(json_str(mail, {"from_name"}), name);
  EXPECT_EQ(json_str(mail, {"from_address"}), "hola@cafe.test");
  EXPECT_EQ(json_str(mail, {"subject"}), "You're invited to join " + name);
  EXPECT_EQ(json_str(body, {"email", "subject"}), "You're invited to join " + name);
}

TEST_F(Members, MailIsRetriedUntilTheSmtpServerAnswers) {
  const std::uint16_t port = unused_port();
  boot({"--smtp-url", "smtp://127.0.0.1:" + std::to_string(port)});
  const auto body = invited(root, "patient@example.com", "agent");  // 201 although SMTP is down
  ASSERT_EQ(json_str(body, {"status"}), "pending");
  // The first attempt fails and is retried...
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (metric(op(), "canopy_mail_retried_total") < 1 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_GE(metric(op(), "canopy_mail_retried_total"), 1);
  EXPECT_EQ(metric(op(), "canopy_mail_delivered_total"), 0);
  // ...and a later attempt reaches the server once it is up.
  SmtpSink sink(dir_.path() / "smtp", dir_.path() / "smtp.log", port);
  ASSERT_TRUE(sink.start());
  ASSERT_TRUE(wait_for_file(sink.out_dir() / "1.json", 20s)) << server_->output() << "\nsink: " << sink.log();
  const auto mail = json::parse(read_text(sink.out_dir() / "1.json"));
  EXPECT_EQ(mail.at("rcpt_tos"), json::value(json::array{"patient@example.com"}));
  EXPECT_EQ(json_str(mail, {"subject"}), "You're invited to join Agency");
  EXPECT_NE(json_str(mail, {"html"}).find(json_str(body, {"link"})), std::string::npos);
  // The sink stores the message before it answers 250, so the counter may lag the file a moment.
  const auto counted = std::chrono::steady_clock::now() + 10s;
  while (metric(op(), "canopy_mail_delivered_total") < 1 && std::chrono::steady_clock::now() < counted) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(metric(op(), "canopy_mail_delivered_total"), 1);
  EXPECT_EQ(metric(op(), "canopy_mail_failed_total"), 0);
}

TEST_F(Members, HeaderInjectionThroughTheBrandIsRefused) {
  boot();
  for (const char* name : {"Evil\r\nBcc: victim@example.com", "Evil\nSubject: pwned"}) {
    const auto r = admin().put("/v1/orgs/" + root + "/customization", {{"name", name}});
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(error_field(r), "name");
  }
  const auto email = admin().put("/v1/orgs/" + root + "/customization",
                                 {{"name", "Agency"}, {"contact_email", "a@agency.test>\r\nBcc: <victim@example.com"}});
  EXPECT_EQ(email.status, 400u) << email.body;
  EXPECT_EQ(error_field(email), "contact_email");
  const auto invitee = invite(admin(), root, "x@example.com\r\nBcc: victim@example.com", "agent");
  EXPECT_EQ(invitee.status, 400u) << invitee.body;
  EXPECT_EQ(error_field(invitee), "email");
  EXPECT_EQ(invited_count(root), 0u);
}

// ------------------------------------------------------------------------------------------------
// The invitation's life
// ------------------------------------------------------------------------------------------------

TEST_F(Members, AcceptingWithoutATokenCreatesAUserWhoseTokenSignsIn) {
  boot();
  const auto token = invite_token(root, "Agent.Smith@Example.com", "agent");
  ASSERT_EQ(invited_count(root), 1u);
  const auto r = accept(token, json::value{{"name", "Agent Smith"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  const auto a = r.json();
  EXPECT_EQ(keys_of(a), (std::set<std::string>{"user_id", "org_id", "role", "token"}));
  EXPECT_EQ(json_str(a, {"org_id"}), root);
  EXPECT_EQ(json_str(a, {"role"}), "agent");
  EXPECT_TRUE(std::regex_match(json_str(a, {"token"}), user_token_pattern)) << r.body;

  auto smith = as(json_str(a, {"token"}));
  const auto me = smith->get("/v1/me");
  ASSERT_EQ(me.status, 200u) << me.body;
  const auto me_json = me.json();
  EXPECT_EQ(json_str(me_json, {"id"}), json_str(a, {"user_id"}));
  EXPECT_EQ(json_str(me_json, {"email"}), "agent.smith@example.com");
  EXPECT_EQ(json_str(me_json, {"name"}), "Agent Smith");
  const auto& orgs = me_json.at("organizations").as_array();
  ASSERT_EQ(orgs.size(), 1u) << me.body;
  EXPECT_EQ(json_str(orgs[0], {"id"}), root);
  EXPECT_EQ(json_str(orgs[0], {"role"}), "agent");
  EXPECT_EQ(smith->get("/v1/orgs/" + root).status, 200u);

  // In the list: active, and no longer invited.
  const auto rows = members(root);
  ASSERT_EQ(rows.size(), 2u) << json::serialize(rows);
  const auto* row = find_row(rows, "user_id", json_str(a, {"user_id"}));
  ASSERT_NE(row, nullptr) << json::serialize(rows);
  EXPECT_EQ(*row, json::value({{"user_id", json_str(a, {"user_id"})},
                               {"name", "Agent Smith"},
                               {"email", "agent.smith@example.com"},
                               {"role", "agent"},
                               {"status", "active"}}));
  EXPECT_EQ(invited_count(root), 0u);
}

// Creating a user through an invitation must not disturb creating users and orgs afterwards.
TEST_F(Members, AfterAnAcceptCreatesAUserUsersAndOrgsCanStillBeCreated) {
  boot();
  const auto first = accept(invite_token(root, "first@example.com", "agent"));
  ASSERT_EQ(first.status, 200u) << first.body;
  const auto user = op().post("/v1/users", {{"email", "later@example.com"}, {"name", "Later"}});
  ASSERT_EQ(user.status, 201u) << "POST /v1/users after an accept that created a user: " << user.body;
  const auto taken = op().post("/v1/users", {{"email", "first@example.com"}, {"name", "X"}});
  EXPECT_EQ(taken.status, 409u) << taken.body;
  EXPECT_EQ(taken.error_code(), "email_taken");
  const auto org = op().post("/v1/orgs", {{"name", "Later Co"}, {"plan", "free"}, {"owner_user_id", json_str(user.json(), {"id"})}});
  EXPECT_EQ(org.status, 201u) << org.body;
  const auto second = accept(invite_token(root, "second@example.com", "agent"));
  EXPECT_EQ(second.status, 200u) << second.body;
}

TEST_F(Members, WithoutANameTheNewUserIsNamedAfterTheEmail) {
  boot();
  const auto token = invite_token(root, "jo.doe@example.com", "developer");
  const auto r = accept(token);  // no body at all
  ASSERT_EQ(r.status, 200u) << r.body;
  auto jo = as(json_str(r.json(), {"token"}));
  EXPECT_EQ(json_str(jo->get("/v1/me").json(), {"name"}), "jo.doe");
}

TEST_F(Members, ASecondAcceptIs410InvitationUsedAlsoAfterARestart) {
  boot();
  const auto other = create_user(op(), "other@example.com", "Other");
  const auto token = invite_token(root, "once@example.com", "developer");
  const auto first = accept(token);
  ASSERT_EQ(first.status, 200u) << first.body;
  const std::string user = json_str(first.json(), {"user_id"});

  const auto again = accept(token);
  EXPECT_EQ(again.status, 410u) << again.body;
  EXPECT_EQ(again.error_code(), "invitation_used");
  // Signed in as someone else changes nothing.
  const auto signed_in = accept(token, std::nullopt, other.token);
  EXPECT_EQ(signed_in.status, 410u) << signed_in.body;
  EXPECT_EQ(signed_in.error_code(), "invitation_used");

  restart(false);
  const auto after = accept(token);
  EXPECT_EQ(after.status, 410u) << after.body;
  EXPECT_EQ(after.error_code(), "invitation_used");
  restart(true);
  const auto after_kill = accept(token);
  EXPECT_EQ(after_kill.status, 410u) << after_kill.body;
  EXPECT_EQ(after_kill.error_code(), "invitation_used");

  // One membership, the first.
  const auto rows = members(root);
  EXPECT_EQ(rows.size(), 2u) << json::serialize(rows);
  EXPECT_EQ(role_in(root, user), "developer");
  EXPECT_EQ(role_in(root, other.id), "");
}

TEST_F(Members, AnInvitationExpiresAfter168HoursWith410InvitationExpired) {
  boot({"--clock", "manual"});
  set_clock("2040-01-01T00:00:00Z");
  const auto body = invited(root, "late@example.com", "developer");
  EXPECT_EQ(json_str(body, {"expires_at"}), "2040-01-08T00:00:00Z");
  const std::string token = token_of(json_str(body, {"link"}));
  const auto keep = invited(root, "keep@example.com", "agent");  // used after the first expires

  set_clock("2040-01-07T23:59:59Z");
  const auto rows = members(root);
  const auto* row = find_row(rows, "email", "late@example.com");
  ASSERT_NE(row, nullptr) << json::serialize(rows);
  EXPECT_EQ(json_str(*row, {"status"}), "invited");
  EXPECT_EQ(json_str(*row, {"expires_at"}), "2040-01-08T00:00:00Z");

  set_clock("2040-01-08T00:00:00Z");
  const auto r = accept(token);
  EXPECT_EQ(r.status, 410u) << r.body;
  EXPECT_EQ(r.error_code(), "invitation_expired");
  EXPECT_EQ(invited_count(root), 0u) << "an expired invitation is not pending";
  // Still expired once newer invitations prune it, and after a restart.
  invited(root, "newer@example.com", "agent");
  EXPECT_EQ(accept(token).error_code(), "invitation_expired");
  restart(true);
  const auto after = accept(token);
  EXPECT_EQ(after.status, 410u) << after.body;
  EXPECT_EQ(after.error_code(), "invitation_expired");
  EXPECT_EQ(accept(token_of(json_str(keep, {"link"}))).error_code(), "invitation_expired");
  // Nobody joined; the address can be invited again.
  EXPECT_EQ(members(root).size(), 2u);  // owner + newer@ (invited)
  const auto fresh = invited(root, "late@example.com", "developer");
  EXPECT_EQ(accept(token_of(json_str(fresh, {"link"}))).status, 200u);
}

TEST_F(Members, TheExpiryFlagSetsTheLifetime) {
  boot({"--clock", "manual", "--invitation-expiry-hours", "2"});
  set_clock("2040-03-01T10:00:00Z");
  const auto body = invited(root, "soon@example.com", "agent");
  EXPECT_EQ(json_str(body, {"expires_at"}), "2040-03-01T12:00:00Z");
  set_clock("2040-03-01T12:00:00Z");
  EXPECT_EQ(accept(token_of(json_str(body, {"link"}))).error_code(), "invitation_expired");
}

TEST_F(Members, ARevokedInvitationIsGone404) {
  boot();
  const auto body = invited(root, "revoked@example.com", "developer");
  const std::string id = json_str(body, {"id"});
  const std::string token = token_of(json_str(body, {"link"}));

  // A developer may not revoke.
  const auto dev = join(root, "dev@example.com", "developer");
  const auto by_dev = as(dev.token)->del("/v1/orgs/" + root + "/invitations/" + id);
  EXPECT_EQ(by_dev.status, 403u) << by_dev.body;
  EXPECT_EQ(by_dev.error_code(), "forbidden");

  const auto r = admin().del("/v1/orgs/" + root + "/invitations/" + id);
  EXPECT_EQ(r.status, 204u) << r.body;
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(find_row(members(root), "email", "revoked@example.com"), nullptr);
  const auto a = accept(token);
  EXPECT_EQ(a.status, 404u) << a.body;
  EXPECT_EQ(a.error_code(), "not_found");
  const auto twice = admin().del("/v1/orgs/" + root + "/invitations/" + id);
  EXPECT_EQ(twice.status, 404u) << twice.body;
  EXPECT_EQ(twice.error_code(), "not_found");
  // An accepted invitation cannot be revoked either.
  const auto used = invited(root, "used@example.com", "agent");
  ASSERT_EQ(accept(token_of(json_str(used, {"link"}))).status, 200u);
  EXPECT_EQ(admin().del("/v1/orgs/" + root + "/invitations/" + json_str(used, {"id"})).status, 404u);
  // Still gone after a restart; nobody was created for the revoked address.
  restart(true);
  EXPECT_EQ(accept(token).status, 404u);
  EXPECT_EQ(op().post("/v1/users", {{"email", "revoked@example.com"}, {"name", "R"}}).status, 201u);
}

TEST_F(Members, AnUnknownOrMalformedTokenIs404) {
  boot();
  for (const std::string token : {"ci_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "ci_", "nonsense", "cu_abc"}) {
    SCOPED_TRACE(token);
    const auto r = accept(token);
    EXPECT_EQ(r.status, 404u) << r.body;
    EXPECT_EQ(r.error_code(), "not_found");
  }
}

TEST_F(Members, AcceptingWhileSignedInAttachesToThatUser) {
  boot();
  const auto bob = create_user(op(), "bob@example.com", "Bob");
  const auto token = invite_token(root, "bob.work@another.test", "manager");
  const auto r = accept(token, json::value{{"name", "Ignored Name"}}, bob.token);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json(), json::value({{"user_id", bob.id}, {"org_id", root}, {"role", "manager"}}));
  EXPECT_EQ(role_in(root, bob.id), "manager");
  const auto me = as(bob.token)->get("/v1/me").json();
  EXPECT_EQ(json_str(me, {"name"}), "Bob");
  EXPECT_EQ(json_str(me, {"email"}), "bob@example.com");
  const auto* node = find_org(me.at("organizations"), root);
  ASSERT_NE(node, nullptr) << json::serialize(me);
  EXPECT_EQ(json_str(*node, {"role"}), "manager");
  // No user was made for the invited address.
  EXPECT_EQ(op().post("/v1/users", {{"email", "bob.work@another.test"}, {"name", "W"}}).status, 201u);

  // A bad bearer is 401, an operator token or API key cannot accept (they are not users).
  const auto token2 = invite_token(root, "x@example.com", "agent");
  const auto bad = accept(token2, std::nullopt, "cu_not-a-real-token");
  EXPECT_EQ(bad.status, 401u) << bad.body;
  EXPECT_EQ(bad.error_code(), "unauthenticated");
  const auto by_operator = accept(token2, std::nullopt, operator_token);
  EXPECT_EQ(by_operator.status, 403u) << by_operator.body;
  EXPECT_EQ(by_operator.error_code(), "forbidden");
  EXPECT_EQ(invited_count(root), 1u) << "the refused accepts left the invitation pending";
}

TEST_F(Members, AnExistingUserWithTheInvitedEmailJoinsWithoutANewToken) {
  boot();
  const auto carol = create_user(op(), "carol@example.com", "Carol");
  const auto body = invited(root, "CAROL@Example.com", "developer");
  // The invited row already names the user.
  const auto rows = members(root);
  const auto* row = find_row(rows, "email", "carol@example.com");
  ASSERT_NE(row, nullptr) << json::serialize(rows);
  EXPECT_EQ(keys_of(*row), invited_keys);
  EXPECT_EQ(json_str(*row, {"user_id"}), carol.id);
  EXPECT_EQ(json_str(*row, {"name"}), "Carol");
  EXPECT_EQ(json_str(*row, {"invitation_id"}), json_str(body, {"id"}));

  const auto r = accept(token_of(json_str(body, {"link"})), json::value{{"name", "Not Carol"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json(), json::value({{"user_id", carol.id}, {"org_id", root}, {"role", "developer"}}));
  // Her own token now reaches the org; her name is unchanged.
  const auto me = as(carol.token)->get("/v1/me").json();
  EXPECT_EQ(json_str(me, {"name"}), "Carol");
  const auto* node = find_org(me.at("organizations"), root);
  ASSERT_NE(node, nullptr) << json::serialize(me);
  EXPECT_EQ(json_str(*node, {"role"}), "developer");
}

TEST_F(Members, AcceptingIntoAnOrgTheUserIsAlreadyIn409) {
  boot();
  const auto carol = create_user(op(), "carol@example.com", "Carol");
  const auto first = invite_token(root, "carol@example.com", "developer");
  const auto second = invite_token(root, "carol@example.com", "manager");
  ASSERT_EQ(accept(first).status, 200u);
  const auto r = accept(second);
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(r.error_code(), "conflict");
  EXPECT_EQ(role_in(root, carol.id), "developer") << "the refused accept changed the role";
  // Signed in as the owner (already admin): 409, and the owner stays admin.
  const auto third = invite_token(root, "someone@example.com", "agent");
  const auto by_owner = accept(third, std::nullopt, owner.token);
  EXPECT_EQ(by_owner.status, 409u) << by_owner.body;
  EXPECT_EQ(by_owner.error_code(), "conflict");
  EXPECT_EQ(role_in(root, owner.id), "admin");
  // Inviting someone who is already a member is refused up front.
  const auto again = invite(admin(), root, "carol@example.com", "agent");
  EXPECT_EQ(again.status, 409u) << again.body;
  EXPECT_EQ(again.error_code(), "conflict");
  EXPECT_EQ(error_field(again), "email");
}

TEST_F(Members, ConcurrentAcceptsOfOneLinkLetExactlyOneIn) {
  boot();
  constexpr int n = 8;
  std::vector<CreatedUser> users;
  for (int i = 0; i < n; ++i) users.push_back(create_user(op(), "racer" + std::to_string(i) + "@example.com", "Racer"));
  const auto token = invite_token(root, "prize@example.com", "manager");
  std::vector<HttpResult> results(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] { results[static_cast<std::size_t>(i)] = accept(token, std::nullopt, users[static_cast<std::size_t>(i)].token); });
  }
  for (auto& t : threads) t.join();
  int ok = 0;
  std::string winner;
  for (const auto& r : results) {
    if (r.status == 200u) {
      ++ok;
      winner = json_str(r.json(), {"user_id"});
    } else {
      EXPECT_EQ(r.status, 410u) << r.body;
      EXPECT_EQ(r.error_code(), "invitation_used");
    }
  }
  EXPECT_EQ(ok, 1);
  const auto rows = members(root);
  EXPECT_EQ(rows.size(), 2u) << json::serialize(rows);
  EXPECT_EQ(role_in(root, winner), "manager");
}

TEST_F(Members, AcceptValidatesItsBodyAndWhoCallsIt) {
  boot();
  const auto token = invite_token(root, "val@example.com", "agent");
  for (const std::string& name : {std::string(), std::string("   "), std::string(201, 'n'), std::string("A\nB")}) {
    const auto r = accept(token, json::value{{"name", name}});
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(error_field(r), "name");
  }
  Client c(server_->port(), "");
  const auto malformed = c.request("POST", "/v1/invitations/" + token + "/accept", "{\"name\":");
  EXPECT_EQ(malformed.status, 400u) << malformed.body;
  const auto wrong_type = accept(token, json::value{{"name", 42}});
  EXPECT_EQ(wrong_type.status, 400u) << wrong_type.body;
  EXPECT_EQ(error_field(wrong_type), "name");
  // An org API key is not a user.
  const auto key = admin().post("/v1/orgs/" + root + "/api-keys", {{"name", "ci"}});
  ASSERT_EQ(key.status, 201u) << key.body;
  const auto by_key = accept(token, std::nullopt, json_str(key.json(), {"key"}));
  EXPECT_EQ(by_key.status, 403u) << by_key.body;
  EXPECT_EQ(by_key.error_code(), "forbidden");
  // None of that used the invitation up.
  EXPECT_EQ(invited_count(root), 1u);
  EXPECT_EQ(accept(token, json::value{{"name", "Val"}}).status, 200u);
  // Malformed invitation ids on revoke are 404 too.
  EXPECT_EQ(admin().del("/v1/orgs/" + root + "/invitations/not-an-id").status, 404u);
}

// ------------------------------------------------------------------------------------------------
// Roles
// ------------------------------------------------------------------------------------------------

TEST_F(Members, AManagerInvitesNonAdminsOnlyAndOthersCannotInvite) {
  boot();
  const auto manager = join(root, "manager@example.com", "manager");
  const auto developer = join(root, "developer@example.com", "developer");
  const auto agent = join(root, "agent@example.com", "agent");
  auto as_manager = as(manager.token);
  for (const char* role : {"developer", "manager", "agent"}) {
    SCOPED_TRACE(role);
    const auto r = invite(*as_manager, root, std::string(role) + "-new@example.com", role);
    EXPECT_EQ(r.status, 201u) << r.body;
    EXPECT_EQ(json_str(r.json(), {"role"}), role);
  }
  const auto admin_invite = invite(*as_manager, root, "boss@example.com", "admin");
  EXPECT_EQ(admin_invite.status, 403u) << admin_invite.body;
  EXPECT_EQ(admin_invite.error_code(), "forbidden");
  for (const auto* who : {&developer, &agent}) {
    const auto r = invite(*as(who->token), root, "nope@example.com", "agent");
    EXPECT_EQ(r.status, 403u) << r.body;
    EXPECT_EQ(r.error_code(), "forbidden");
  }
  EXPECT_EQ(invited_count(root), 3u);
  EXPECT_EQ(find_row(members(root), "email", "boss@example.com"), nullptr);
  EXPECT_EQ(find_row(members(root), "email", "nope@example.com"), nullptr);
  // The admin may invite an admin.
  EXPECT_EQ(invite(admin(), root, "boss@example.com", "admin").status, 201u);
  // Bad roles and emails name the field.
  const auto bad_role = invite(admin(), root, "x@example.com", "owner");
  EXPECT_EQ(bad_role.status, 400u) << bad_role.body;
  EXPECT_EQ(error_field(bad_role), "role");
  const auto bad_email = invite(admin(), root, "not-an-email", "agent");
  EXPECT_EQ(bad_email.status, 400u) << bad_email.body;
  EXPECT_EQ(error_field(bad_email), "email");
}

TEST_F(Members, AManagerCannotTouchAdminsNorGrantAdminButAnAdminCan) {
  boot();
  const auto manager = join(root, "manager@example.com", "manager");
  const auto developer = join(root, "developer@example.com", "developer");
  auto m = as(manager.token);
  const std::string base = "/v1/orgs/" + root + "/members/";

  const auto demote_owner = m->patch(base + owner.id, {{"role", "developer"}});
  EXPECT_EQ(demote_owner.status, 403u) << demote_owner.body;
  EXPECT_EQ(demote_owner.error_code(), "forbidden");
  const auto remove_owner = m->del(base + owner.id);
  EXPECT_EQ(remove_owner.status, 403u) << remove_owner.body;
  EXPECT_EQ(remove_owner.error_code(), "forbidden");
  const auto grant_admin = m->patch(base + developer.id, {{"role", "admin"}});
  EXPECT_EQ(grant_admin.status, 403u) << grant_admin.body;
  EXPECT_EQ(grant_admin.error_code(), "forbidden");
  const auto self_admin = m->patch(base + manager.id, {{"role", "admin"}});
  EXPECT_EQ(self_admin.status, 403u) << self_admin.body;
  EXPECT_EQ(role_in(root, owner.id), "admin");
  EXPECT_EQ(role_in(root, developer.id), "developer");
  EXPECT_EQ(role_in(root, manager.id), "manager");

  // Non-admin roles are the manager's to change.
  const auto to_agent = m->patch(base + developer.id, {{"role", "agent"}});
  ASSERT_EQ(to_agent.status, 200u) << to_agent.body;
  EXPECT_EQ(to_agent.json(), json::value({{"user_id", developer.id},
                                          {"name", "Member"},
                                          {"email", "developer@example.com"},
                                          {"role", "agent"},
                                          {"status", "active"}}));
  EXPECT_EQ(role_in(root, developer.id), "agent");
  // A developer cannot change anyone.
  const auto by_dev = as(developer.token)->patch(base + manager.id, {{"role", "agent"}});
  EXPECT_EQ(by_dev.status, 403u) << by_dev.body;

  // The admin grants admin; then that manager-turned-admin may manage admins.
  const auto promote = admin().patch(base + manager.id, {{"role", "admin"}});
  ASSERT_EQ(promote.status, 200u) << promote.body;
  EXPECT_EQ(json_str(promote.json(), {"role"}), "admin");
  EXPECT_EQ(m->patch(base + developer.id, {{"role", "admin"}}).status, 200u);
  EXPECT_EQ(role_in(root, developer.id), "admin");
  EXPECT_EQ(m->del(base + developer.id).status, 204u);
  EXPECT_EQ(role_in(root, developer.id), "");

  // Unknown members and bad roles.
  const auto ghost = admin().patch(base + "usr_0000000000000", {{"role", "agent"}});
  EXPECT_EQ(ghost.status, 404u) << ghost.body;
  EXPECT_EQ(ghost.error_code(), "not_found");
  const auto bad = admin().patch(base + manager.id, {{"role", "superuser"}});
  EXPECT_EQ(bad.status, 400u) << bad.body;
  EXPECT_EQ(error_field(bad), "role");
}

TEST_F(Members, TheLastAdminOfARootCannotBeDemotedRemovedOrLeave) {
  boot();
  const auto manager = join(root, "manager@example.com", "manager");
  const std::string base = "/v1/orgs/" + root + "/members/";
  for (auto* who : {&admin(), &op()}) {
    const auto demote = who->patch(base + owner.id, {{"role", "developer"}});
    EXPECT_EQ(demote.status, 409u) << demote.body;
    EXPECT_EQ(demote.error_code(), "last_admin");
    const auto remove = who->del(base + owner.id);
    EXPECT_EQ(remove.status, 409u) << remove.body;
    EXPECT_EQ(remove.error_code(), "last_admin");
  }
  const auto leave = admin().del("/v1/orgs/" + root + "/my-role");
  EXPECT_EQ(leave.status, 409u) << leave.body;
  EXPECT_EQ(leave.error_code(), "last_admin");
  EXPECT_EQ(role_in(root, owner.id), "admin");
  // Re-stating admin is no demotion.
  EXPECT_EQ(admin().patch(base + owner.id, {{"role", "admin"}}).status, 200u);

  // With a second admin, the first may step down; then the second is the last.
  ASSERT_EQ(admin().patch(base + manager.id, {{"role", "admin"}}).status, 200u);
  const auto step_down = admin().patch(base + owner.id, {{"role", "developer"}});
  ASSERT_EQ(step_down.status, 200u) << step_down.body;
  EXPECT_EQ(json_str(step_down.json(), {"role"}), "developer");
  auto second = as(manager.token);
  const auto last = second->del("/v1/orgs/" + root + "/my-role");
  EXPECT_EQ(last.status, 409u) << last.body;
  EXPECT_EQ(last.error_code(), "last_admin");
  const auto self_demote = second->patch(base + manager.id, {{"role", "manager"}});
  EXPECT_EQ(self_demote.status, 409u) << self_demote.body;
  EXPECT_EQ(self_demote.error_code(), "last_admin");
  // The former owner, now a developer, leaves.
  EXPECT_EQ(admin().del("/v1/orgs/" + root + "/my-role").status, 204u);
  EXPECT_EQ(admin().get("/v1/orgs/" + root).status, 404u);
  const auto rows = members(root);
  ASSERT_EQ(rows.size(), 1u) << json::serialize(rows);
  EXPECT_EQ(json_str(rows[0], {"user_id"}), manager.id);
  EXPECT_EQ(json_str(rows[0], {"role"}), "admin");
}

// Two admins of a root demoting (or removing) each other at the same moment: one may win, but the
// root must never be left without an admin.
TEST_F(Members, ConcurrentDemotionsNeverLeaveARootWithoutAnAdmin) {
  boot();
  const auto second = join(root, "second@example.com", "admin");
  const std::string base = "/v1/orgs/" + root + "/members/";
  const auto admins = [&] {
    const auto rows = members(root);
    return std::count_if(rows.begin(), rows.end(), [](const json::value& r) {
      return has(r, "role") && r.at("role") == json::value("admin") && r.at("status") == json::value("active");
    });
  };
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // Both admins again (the operator may always grant admin).
    ASSERT_EQ(op().patch(base + owner.id, {{"role", "admin"}}).status, 200u);
    ASSERT_EQ(op().patch(base + second.id, {{"role", "admin"}}).status, 200u);
    HttpResult a, b;
    std::thread t1([&] { a = as(owner.token)->patch(base + second.id, {{"role", "developer"}}); });
    std::thread t2([&] { b = as(second.token)->patch(base + owner.id, {{"role", "developer"}}); });
    t1.join();
    t2.join();
    const int ok = (a.status == 200u) + (b.status == 200u);
    EXPECT_EQ(ok, 1) << "owner demoting second: " << a.status << " " << a.body
                     << "\nsecond demoting owner: " << b.status << " " << b.body;
    for (const auto* r : {&a, &b}) {
      if (r->status != 200u) {
        EXPECT_TRUE(r->status == 409u || r->status == 403u) << r->body;
      }
    }
    ASSERT_GE(admins(), 1) << "the root was left without an admin: " << json::serialize(members(root));
  }
}

TEST_F(Members, ConcurrentLeavesNeverLeaveARootWithoutAnAdmin) {
  boot();
  const auto second = join(root, "second@example.com", "admin");
  const std::vector<std::pair<std::string, std::string>> both = {{owner.id, "owner@example.com"},
                                                                 {second.id, "second@example.com"}};
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // Whoever left in the last round is invited back as admin (by the operator).
    for (const auto& [id, email] : both) {
      if (role_in(root, id).empty()) {
        ASSERT_EQ(accept(invite_token(root, email, "admin", &op())).status, 200u);
      }
    }
    HttpResult a, b;
    std::thread t1([&] { a = as(owner.token)->del("/v1/orgs/" + root + "/my-role"); });
    std::thread t2([&] { b = as(second.token)->del("/v1/orgs/" + root + "/my-role"); });
    t1.join();
    t2.join();
    const int left = (a.status == 204u) + (b.status == 204u);
    EXPECT_EQ(left, 1) << "owner leaving: " << a.status << " " << a.body << "\nsecond leaving: " << b.status << " "
                       << b.body;
    const auto rows = members(root);
    ASSERT_EQ(rows.size(), 1u) << "the root was left without an admin: " << json::serialize(rows);
    EXPECT_EQ(json_str(rows[0], {"role"}), "admin");
  }
}

// A manager changing a member while an admin promotes that member to admin: whichever order the
// server picks, a manager never ends up having changed an admin.
TEST_F(Members, AManagerNeverChangesSomeoneConcurrentlyMadeAdmin) {
  boot();
  const auto manager = join(root, "manager@example.com", "manager");
  const auto dev = join(root, "dev@example.com", "developer");
  const std::string target = "/v1/orgs/" + root + "/members/" + dev.id;
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    ASSERT_EQ(admin().patch(target, {{"role", "developer"}}).status, 200u);
    HttpResult promote, change;
    std::thread t1([&] { promote = as(owner.token)->patch(target, {{"role", "admin"}}); });
    std::thread t2([&] { change = as(manager.token)->patch(target, {{"role", "agent"}}); });
    t1.join();
    t2.join();
    ASSERT_EQ(promote.status, 200u) << promote.body;
    // Either the manager went first (then the promotion wins: admin) or was refused (403).
    ASSERT_EQ(role_in(root, dev.id), "admin")
        << "the manager's change (" << change.status << " " << change.body << ") overrode an admin";
  }
}

TEST_F(Members, ASubOrgsMembersCanAllBeRemovedAdminsIncluded) {
  boot();
  const auto client = sub("Client Co");
  const auto x = join(client, "x@example.com", "admin");
  const auto y = join(client, "y@example.com", "admin");
  const auto z = join(client, "z@example.com", "developer");
  // The only direct admin but one may step down and leave: the root's admins oversee the sub-org.
  const std::string base = "/v1/orgs/" + client + "/members/";
  ASSERT_EQ(admin().del(base + y.id).status, 204u);
  auto as_x = as(x.token);
  const auto demote = as_x->patch(base + x.id, {{"role", "developer"}});
  EXPECT_EQ(demote.status, 200u) << demote.body;
  EXPECT_EQ(as_x->del("/v1/orgs/" + client + "/my-role").status, 204u);
  EXPECT_EQ(admin().del(base + z.id).status, 204u);
  EXPECT_TRUE(members(client).empty()) << json::serialize(members(client));
  // The root's admin still runs it; the removed have no access.
  EXPECT_EQ(admin().get("/v1/orgs/" + client).status, 200u);
  EXPECT_EQ(json_int(admin().get("/v1/orgs/" + client).json(), {"member_count"}), 0);
  for (const auto* who : {&x, &y, &z}) {
    const auto r = as(who->token)->get("/v1/orgs/" + client);
    EXPECT_EQ(r.status, 404u) << r.body;
    EXPECT_EQ(r.error_code(), "not_found");
  }
}

// ------------------------------------------------------------------------------------------------
// my-role
// ------------------------------------------------------------------------------------------------

TEST_F(Members, AnAncestorAdminTakesADirectRoleInASubOrg) {
  boot();
  const auto client = sub("Client Co");
  const auto r = admin().put("/v1/orgs/" + client + "/my-role", {{"role", "developer"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json(), json::value({{"user_id", owner.id},
                                   {"name", "Owner"},
                                   {"email", "owner@example.com"},
                                   {"role", "developer"},
                                   {"status", "active"}}));
  EXPECT_EQ(role_in(client, owner.id), "developer");
  const auto me = admin().get("/v1/me").json();
  const auto* root_node = find_org(me.at("organizations"), root);
  ASSERT_NE(root_node, nullptr) << json::serialize(me);
  EXPECT_EQ(json_str(*root_node, {"role"}), "admin");
  const auto* sub_node = find_org(root_node->at("sub_organizations"), client);
  ASSERT_NE(sub_node, nullptr) << "the sub-org should be nested under the root: " << json::serialize(me);
  EXPECT_EQ(json_str(*sub_node, {"role"}), "developer");
  // Still admin from above.
  EXPECT_EQ(admin().put("/v1/orgs/" + client + "/customization", {{"name", "Client Co"}}).status, 200u);

  const auto again = admin().put("/v1/orgs/" + client + "/my-role", {{"role", "agent"}});
  ASSERT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(json_str(again.json(), {"role"}), "agent");
  EXPECT_EQ(members(client).size(), 1u);

  const auto bad = admin().put("/v1/orgs/" + client + "/my-role", {{"role", "boss"}});
  EXPECT_EQ(bad.status, 400u) << bad.body;
  EXPECT_EQ(error_field(bad), "role");
  // A root has no ancestor: nobody sets their own role there.
  const auto on_root = admin().put("/v1/orgs/" + root + "/my-role", {{"role", "developer"}});
  EXPECT_EQ(on_root.status, 403u) << on_root.body;
  EXPECT_EQ(on_root.error_code(), "forbidden");
  EXPECT_EQ(role_in(root, owner.id), "admin");

  // Leaving the direct role keeps the oversight.
  EXPECT_EQ(admin().del("/v1/orgs/" + client + "/my-role").status, 204u);
  EXPECT_TRUE(members(client).empty());
  EXPECT_EQ(admin().get("/v1/orgs/" + client).status, 200u);
  const auto me2 = admin().get("/v1/me").json();
  const auto* sub_again = find_org(me2.at("organizations"), client);
  ASSERT_NE(sub_again, nullptr) << json::serialize(me2);
  EXPECT_EQ(json_str(*sub_again, {"role"}), "admin");
  const auto leave_again = admin().del("/v1/orgs/" + client + "/my-role");
  EXPECT_EQ(leave_again.status, 404u) << leave_again.body;
}

TEST_F(Members, NobodyPromotesThemselvesAndLeavingMakesTheOrg404) {
  boot();
  const auto client = sub("Client Co");
  const auto dev = join(client, "dev@example.com", "developer");
  auto as_dev = as(dev.token);
  for (const char* role : {"admin", "developer", "manager"}) {
    SCOPED_TRACE(role);
    const auto r = as_dev->put("/v1/orgs/" + client + "/my-role", {{"role", role}});
    EXPECT_EQ(r.status, 403u) << r.body;
    EXPECT_EQ(r.error_code(), "forbidden");
  }
  EXPECT_EQ(role_in(client, dev.id), "developer");
  // A manager of the root is no ancestor admin: the sub-org does not exist for them.
  const auto manager = join(root, "manager@example.com", "manager");
  const auto by_manager = as(manager.token)->put("/v1/orgs/" + client + "/my-role", {{"role", "agent"}});
  EXPECT_EQ(by_manager.status, 404u) << by_manager.body;
  EXPECT_EQ(by_manager.error_code(), "not_found");
  EXPECT_EQ(role_in(client, manager.id), "");

  const auto leave = as_dev->del("/v1/orgs/" + client + "/my-role");
  EXPECT_EQ(leave.status, 204u) << leave.body;
  for (const std::string& path : {"/v1/orgs/" + client, "/v1/orgs/" + client + "/members",
                                 "/v1/orgs/" + client + "/customization"}) {
    const auto r = as_dev->get(path);
    EXPECT_EQ(r.status, 404u) << path << " " << r.body;
    EXPECT_EQ(r.error_code(), "not_found") << path;
  }
  EXPECT_EQ(as_dev->get("/v1/me").json().at("organizations"), json::value(json::array{}));
  EXPECT_EQ(as_dev->del("/v1/orgs/" + client + "/my-role").status, 404u);
  EXPECT_TRUE(members(client).empty());
}

// ------------------------------------------------------------------------------------------------
// One user, many orgs
// ------------------------------------------------------------------------------------------------

TEST_F(Members, OneLoginHasADifferentRoleInEachOrg) {
  boot();
  const auto other_owner = create_user(op(), "boss@other.test", "Other Boss");
  const auto other_root = create_root(op(), other_owner.id, "business", "Other Agency");
  auto other_admin = as(other_owner.token);
  const auto client = sub("Client Co");

  const auto u = create_user(op(), "uma@example.com", "Uma");
  ASSERT_EQ(accept(invite_token(root, "uma@example.com", "manager")).status, 200u);
  ASSERT_EQ(accept(invite_token(client, "uma@example.com", "developer")).status, 200u);
  ASSERT_EQ(accept(invite_token(other_root, "uma@example.com", "agent", other_admin.get())).status, 200u);

  auto uma = as(u.token);
  const auto me = uma->get("/v1/me").json();
  const auto& orgs = me.at("organizations").as_array();
  ASSERT_EQ(orgs.size(), 2u) << json::serialize(me);
  const auto* a = find_org(me.at("organizations"), root);
  const auto* b = find_org(me.at("organizations"), other_root);
  ASSERT_TRUE(a && b) << json::serialize(me);
  EXPECT_EQ(json_str(*a, {"role"}), "manager");
  EXPECT_EQ(json_str(*a, {"name"}), "Agency");
  EXPECT_EQ(json_str(*b, {"role"}), "agent");
  EXPECT_EQ(json_str(*b, {"name"}), "Other Agency");
  const auto* c = find_org(a->at("sub_organizations"), client);
  ASSERT_NE(c, nullptr) << json::serialize(me);
  EXPECT_EQ(json_str(*c, {"role"}), "developer");

  // The roles act independently with the one token.
  EXPECT_EQ(invite(*uma, root, "one@example.com", "agent").status, 201u);
  const auto in_other = invite(*uma, other_root, "two@example.com", "agent");
  EXPECT_EQ(in_other.status, 403u) << in_other.body;
  const auto in_client = invite(*uma, client, "three@example.com", "agent");
  EXPECT_EQ(in_client.status, 403u) << in_client.body;
  EXPECT_EQ(uma->post("/v1/orgs/" + client + "/api-keys", {{"name", "k"}}).status, 201u);
  EXPECT_EQ(uma->post("/v1/orgs/" + other_root + "/api-keys", {{"name", "k"}}).status, 403u);
  // Each org's list shows only its own role.
  EXPECT_EQ(role_in(root, u.id), "manager");
  EXPECT_EQ(role_in(client, u.id), "developer");
  EXPECT_EQ(role_in(other_root, u.id), "agent");
}

// ------------------------------------------------------------------------------------------------
// The members list
// ------------------------------------------------------------------------------------------------

TEST_F(Members, TheListPagesOneRowAtATimeAcrossMembersAndInvitations) {
  boot();
  const auto m1 = join(root, "m1@example.com", "developer", "M One");
  join(root, "m2@example.com", "agent", "M Two");
  const auto existing = create_user(op(), "known@example.com", "Known");
  invited(root, "known@example.com", "manager");
  invited(root, "stranger@example.com", "agent");

  const auto all = members(root);
  ASSERT_EQ(all.size(), 5u) << json::serialize(all);
  // Active members first, then invitations; each with its documented shape.
  for (std::size_t i = 0; i < all.size(); ++i) {
    SCOPED_TRACE(json::serialize(all[i]));
    if (i < 3) {
      EXPECT_EQ(json_str(all[i], {"status"}), "active");
      EXPECT_EQ(keys_of(all[i]), member_keys);
    } else {
      EXPECT_EQ(json_str(all[i], {"status"}), "invited");
      EXPECT_EQ(keys_of(all[i]), invited_keys);
      EXPECT_TRUE(std::regex_match(json_str(all[i], {"invitation_id"}), invitation_id_pattern));
      EXPECT_TRUE(std::regex_match(json_str(all[i], {"expires_at"}), rfc3339_pattern));
    }
  }
  const auto* stranger = find_row(all, "email", "stranger@example.com");
  ASSERT_NE(stranger, nullptr);
  EXPECT_TRUE(stranger->at("user_id").is_null());
  EXPECT_TRUE(stranger->at("name").is_null());
  const auto* known = find_row(all, "email", "known@example.com");
  ASSERT_NE(known, nullptr);
  EXPECT_EQ(json_str(*known, {"user_id"}), existing.id);
  EXPECT_EQ(json_str(*known, {"role"}), "manager");

  for (const int limit : {1, 2}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    json::array walked;
    std::string cursor;
    for (int page = 0; page < 10; ++page) {
      const std::string target = "/v1/orgs/" + root + "/members?limit=" + std::to_string(limit) +
                                 (cursor.empty() ? "" : "&cursor=" + cursor);
      const auto r = admin().get(target);
      ASSERT_EQ(r.status, 200u) << target << " " << r.body;
      const auto v = r.json();
      ASSERT_TRUE(has(v, "data") && v.at("data").is_array()) << r.body;
      const auto& data = v.at("data").as_array();
      EXPECT_LE(data.size(), static_cast<std::size_t>(limit));
      EXPECT_FALSE(data.empty()) << "an empty page before the end: " << r.body;
      for (const auto& row : data) walked.push_back(row);
      ASSERT_TRUE(has(v, "next_cursor")) << r.body;
      if (v.at("next_cursor").is_null()) break;
      ASSERT_TRUE(v.at("next_cursor").is_string()) << r.body;
      cursor = std::string(v.at("next_cursor").as_string());
    }
    EXPECT_EQ(walked, all) << "paging must give every row once, in the unpaged order";
  }
  // A developer reads the same list.
  const auto by_dev = as(m1.token)->get("/v1/orgs/" + root + "/members");
  ASSERT_EQ(by_dev.status, 200u) << by_dev.body;
  EXPECT_EQ(by_dev.json().at("data"), json::value(all));
}

TEST_F(Members, BadCursorsAndLimitsAre400NamingTheField) {
  boot();
  const auto gone = join(root, "gone@example.com", "agent");
  join(root, "stay@example.com", "agent");
  ASSERT_EQ(admin().del("/v1/orgs/" + root + "/members/" + gone.id).status, 204u);
  const std::string list = "/v1/orgs/" + root + "/members?";
  for (const std::string& cursor : std::vector<std::string>{"garbage", "usr_0000000000000", gone.id, "inv_0000000000000", root}) {
    SCOPED_TRACE(cursor);
    const auto r = admin().get(list + "limit=1&cursor=" + cursor);
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request");
    EXPECT_EQ(error_field(r), "cursor");
  }
  for (const char* limit : {"0", "501", "-1", "x", "1.5"}) {
    SCOPED_TRACE(limit);
    const auto r = admin().get(list + "limit=" + limit);
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(error_field(r), "limit");
  }
  EXPECT_EQ(admin().get(list + "limit=500").status, 200u);
  // Strangers do not learn the org exists.
  const auto stranger = create_user(op(), "stranger@example.com", "S");
  const auto r = as(stranger.token)->get(list + "limit=1");
  EXPECT_EQ(r.status, 404u) << r.body;
  EXPECT_EQ(r.error_code(), "not_found");
}

// ------------------------------------------------------------------------------------------------
// Mass assignment: fields a caller may not set are 400 naming the field, and nothing changes
// ------------------------------------------------------------------------------------------------

TEST_F(Members, PatchOrgRefusesFieldsACallerMayNotSet) {
  boot();
  grant(op(), root, 1'000'000);
  const auto client = sub("Client Co");
  const auto before_root = op().get("/v1/orgs/" + root).json();
  const auto before_client = op().get("/v1/orgs/" + client).json();
  const std::vector<std::pair<std::string, json::value>> probes = {
      {"parent_id", json::value(root)},
      {"balance_micros", json::value(999'000'000)},
      {"id", json::value("org_0000000000000")},
      {"members", json::value(json::array{json::object{{"user_id", owner.id}, {"role", "admin"}}})},
      {"plan", json::value("enterprise")},
      {"custom_domain", json::value("evil.test")},
      {"member_count", json::value(0)},
  };
  for (const auto& [field, value] : probes) {
    SCOPED_TRACE(field);
    for (const auto& org : {root, client}) {
      json::object body{{"name", "Hijacked"}};
      body[field] = value;
      const auto r = admin().patch("/v1/orgs/" + org, body);
      EXPECT_EQ(r.status, 400u) << r.body;
      EXPECT_EQ(r.error_code(), "invalid_request");
      EXPECT_EQ(error_field(r), field);
    }
  }
  EXPECT_EQ(op().get("/v1/orgs/" + root).json(), before_root);
  EXPECT_EQ(op().get("/v1/orgs/" + client).json(), before_client);
}

TEST_F(Members, InvitationsRefuseUserIdOrgIdAndOtherServerFields) {
  boot();
  const auto victim = create_user(op(), "victim@example.com", "Victim");
  const std::vector<std::pair<std::string, json::value>> probes = {
      {"user_id", json::value(victim.id)},
      {"org_id", json::value(root)},
      {"status", json::value("accepted")},
      {"expires_at", json::value("2099-01-01T00:00:00Z")},
      {"id", json::value("inv_0000000000000")},
      {"token", json::value("ci_mine")},
  };
  for (const auto& [field, value] : probes) {
    SCOPED_TRACE(field);
    json::object body{{"email", "new@example.com"}, {"role", "developer"}};
    body[field] = value;
    const auto r = admin().post("/v1/orgs/" + root + "/invitations", body);
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request");
    EXPECT_EQ(error_field(r), field);
  }
  EXPECT_EQ(invited_count(root), 0u);
  EXPECT_EQ(members(root).size(), 1u);
}

TEST_F(Members, AcceptRefusesARoleAndTheInvitationStaysUsableWithItsOwnRole) {
  boot();
  const auto other = create_user(op(), "other@example.com", "Other");
  const auto token = invite_token(root, "dev@example.com", "developer");
  const std::vector<std::pair<std::string, json::value>> probes = {
      {"role", json::value("admin")},
      {"user_id", json::value(other.id)},
      {"org_id", json::value(root)},
      {"email", json::value("other@example.com")},
  };
  for (const auto& [field, value] : probes) {
    SCOPED_TRACE(field);
    json::object body{{"name", "Dev"}};
    body[field] = value;
    const auto r = accept(token, json::value(body));
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request");
    EXPECT_EQ(error_field(r), field);
  }
  EXPECT_EQ(invited_count(root), 1u);
  const auto r = accept(token, json::value{{"name", "Dev"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(json_str(r.json(), {"role"}), "developer");
  EXPECT_EQ(role_in(root, json_str(r.json(), {"user_id"})), "developer");
  EXPECT_EQ(role_in(root, other.id), "");
}

TEST_F(Members, CustomizationAndUsersRefuseIdsAndTokens) {
  boot();
  const json::value brand{{"name", "Agency"}, {"logo_url", "https://cdn.agency.test/a.png"}};
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/customization", brand).status, 200u);
  const auto before = admin().get("/v1/orgs/" + root + "/customization").json();
  for (const char* field : {"id", "org_id", "custom_domain", "parent_id"}) {
    SCOPED_TRACE(field);
    json::object body{{"name", "Hijacked"}, {"logo_url", "https://evil.test/x.png"}};
    body[field] = "org_0000000000000";
    const auto r = admin().put("/v1/orgs/" + root + "/customization", body);
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request");
    EXPECT_EQ(error_field(r), field);
  }
  EXPECT_EQ(admin().get("/v1/orgs/" + root + "/customization").json(), before);

  for (const char* field : {"id", "token"}) {
    SCOPED_TRACE(field);
    json::object body{{"email", "mallory@example.com"}, {"name", "Mallory"}};
    body[field] = std::string(field) == "id" ? "usr_0000000000000" : "cu_chosen-by-caller";
    const auto r = op().post("/v1/users", body);
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request");
    EXPECT_EQ(error_field(r), field);
  }
  // Nothing was created: the email is free, the chosen token signs in as nobody.
  EXPECT_EQ(as("cu_chosen-by-caller")->get("/v1/me").status, 401u);
  EXPECT_EQ(op().post("/v1/users", {{"email", "mallory@example.com"}, {"name", "Mallory"}}).status, 201u);
}

TEST_F(Members, PatchMemberAndMyRoleRefuseAUserIdBesideTheRole) {
  boot();
  const auto dev = join(root, "dev@example.com", "developer");
  const auto manager = join(root, "manager@example.com", "manager");
  const auto r = admin().patch("/v1/orgs/" + root + "/members/" + dev.id,
                               {{"role", "admin"}, {"user_id", manager.id}});
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(r.error_code(), "invalid_request");
  EXPECT_EQ(error_field(r), "user_id");
  const auto as_status = admin().patch("/v1/orgs/" + root + "/members/" + dev.id, {{"role", "agent"}, {"status", "active"}});
  EXPECT_EQ(as_status.status, 400u) << as_status.body;
  EXPECT_EQ(error_field(as_status), "status");
  const auto client = sub("Client Co");
  const auto mine = admin().put("/v1/orgs/" + client + "/my-role", {{"role", "admin"}, {"user_id", dev.id}});
  EXPECT_EQ(mine.status, 400u) << mine.body;
  EXPECT_EQ(error_field(mine), "user_id");
  EXPECT_EQ(role_in(root, dev.id), "developer");
  EXPECT_EQ(role_in(root, manager.id), "manager");
  EXPECT_TRUE(members(client).empty());
}

// ------------------------------------------------------------------------------------------------
// Customization
// ------------------------------------------------------------------------------------------------

TEST_F(Members, CustomizationIsValidatedReplacedAndNeverInherited) {
  boot();
  const json::value full{{"name", "Agency"},
                         {"logo_url", "https://cdn.agency.test/a.png"},
                         {"contact_email", "Hello@Agency.test"},
                         {"address", "1 Main St, Springfield"},
                         {"terms_of_service_url", "https://agency.test/terms"},
                         {"privacy_policy_url", "http://agency.test/privacy"}};
  const auto put = admin().put("/v1/orgs/" + root + "/customization", full);
  ASSERT_EQ(put.status, 200u) << put.body;
  json::value expected = full;
  expected.as_object()["contact_email"] = "hello@agency.test";
  EXPECT_EQ(put.json(), expected);
  EXPECT_EQ(admin().get("/v1/orgs/" + root + "/customization").json(), expected);

  struct Bad {
    const char* field;
    json::value value;
  };
  const std::vector<Bad> bad = {
      {"logo_url", "ftp://cdn.agency.test/a.png"}, {"logo_url", "javascript:alert(1)"}, {"logo_url", "cdn.agency.test"},
      {"terms_of_service_url", "not a url"},       {"privacy_policy_url", "file:///etc/passwd"},
      {"contact_email", "nope"},                    {"contact_email", "a@@b.test"},
  };
  for (const auto& b : bad) {
    SCOPED_TRACE(std::string(b.field) + " = " + json::serialize(b.value));
    json::value body = full;
    body.as_object()[b.field] = b.value;
    const auto r = admin().put("/v1/orgs/" + root + "/customization", body);
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request");
    EXPECT_EQ(error_field(r), b.field);
  }
  EXPECT_EQ(admin().get("/v1/orgs/" + root + "/customization").json(), expected);

  // PUT replaces: what is left out is cleared.
  const auto replaced = admin().put("/v1/orgs/" + root + "/customization", {{"name", "Agency"}});
  ASSERT_EQ(replaced.status, 200u) << replaced.body;
  EXPECT_EQ(replaced.json(), json::value({{"name", "Agency"},
                                          {"logo_url", nullptr},
                                          {"contact_email", nullptr},
                                          {"address", nullptr},
                                          {"terms_of_service_url", nullptr},
                                          {"privacy_policy_url", nullptr}}));

  // A sub-org has its own, never the parent's.
  ASSERT_EQ(admin().put("/v1/orgs/" + root + "/customization", full).status, 200u);
  const auto client = sub("Client Co");
  EXPECT_EQ(admin().get("/v1/orgs/" + client + "/customization").json(),
            json::value({{"name", "Client Co"},
                         {"logo_url", nullptr},
                         {"contact_email", nullptr},
                         {"address", nullptr},
                         {"terms_of_service_url", nullptr},
                         {"privacy_policy_url", nullptr}}));

  // Members read it, only admins write it, strangers do not see it.
  const auto dev = join(root, "dev@example.com", "developer");
  EXPECT_EQ(as(dev.token)->get("/v1/orgs/" + root + "/customization").json(), expected);
  const auto by_dev = as(dev.token)->put("/v1/orgs/" + root + "/customization", {{"name", "Mine"}});
  EXPECT_EQ(by_dev.status, 403u) << by_dev.body;
  EXPECT_EQ(by_dev.error_code(), "forbidden");
  const auto by_dev_sub = as(dev.token)->get("/v1/orgs/" + client + "/customization");
  EXPECT_EQ(by_dev_sub.status, 404u) << by_dev_sub.body;
  EXPECT_EQ(admin().get("/v1/orgs/" + root + "/customization").json(), expected);
}

// ------------------------------------------------------------------------------------------------
// Durability
// ------------------------------------------------------------------------------------------------

TEST_F(Members, MembersInvitationsAndCustomizationSurviveKill9) {
  boot();
  const auto client = sub("Client Co");
  ASSERT_EQ(admin()
                .put("/v1/orgs/" + client + "/customization",
                     {{"name", "Acme Agency"},
                      {"logo_url", "https://cdn.acme.test/logo.png"},
                      {"contact_email", "hello@acme.test"},
                      {"address", "2 Side St"}})
                .status,
            200u);
  const auto manager = join(root, "manager@example.com", "manager", "Manny");
  const auto dev = join(client, "dev@example.com", "developer", "Dee");
  const auto removed = join(root, "removed@example.com", "agent");
  ASSERT_EQ(admin().patch("/v1/orgs/" + root + "/members/" + manager.id, {{"role", "admin"}}).status, 200u);
  ASSERT_EQ(admin().del("/v1/orgs/" + root + "/members/" + removed.id).status, 204u);
  ASSERT_EQ(admin().put("/v1/orgs/" + client + "/my-role", {{"role", "agent"}}).status, 200u);
  const auto pending = invited(client, "pending@example.com", "manager");
  const auto revoked = invited(root, "revoked@example.com", "agent");
  ASSERT_EQ(admin().del("/v1/orgs/" + root + "/invitations/" + json_str(revoked, {"id"})).status, 204u);
  const auto used_token = invite_token(root, "used@example.com", "developer");
  const auto used = accept(used_token);
  ASSERT_EQ(used.status, 200u) << used.body;
  const auto used_me = as(json_str(used.json(), {"token"}))->get("/v1/me").json();

  const auto root_members = members(root);
  const auto client_members = members(client);
  const auto brand = admin().get("/v1/orgs/" + client + "/customization").json();
  const auto owner_me = admin().get("/v1/me").json();
  const auto dev_me = as(dev.token)->get("/v1/me").json();

  restart(true);

  EXPECT_EQ(members(root), root_members);
  EXPECT_EQ(members(client), client_members);
  EXPECT_EQ(admin().get("/v1/orgs/" + client + "/customization").json(), brand);
  EXPECT_EQ(admin().get("/v1/me").json(), owner_me);
  EXPECT_EQ(as(dev.token)->get("/v1/me").json(), dev_me);
  EXPECT_EQ(as(json_str(used.json(), {"token"}))->get("/v1/me").json(), used_me) << "a token made by an accept";
  EXPECT_EQ(as(removed.token)->get("/v1/orgs/" + root).status, 404u);
  EXPECT_EQ(accept(token_of(json_str(revoked, {"link"}))).status, 404u);
  EXPECT_EQ(accept(used_token).error_code(), "invitation_used");
  // The manager-turned-admin keeps the rights; the pending invitation still works, with its role,
  // and its mail (branded as before the crash) goes out.
  const auto a = accept(token_of(json_str(pending, {"link"})));
  ASSERT_EQ(a.status, 200u) << a.body;
  EXPECT_EQ(json_str(a.json(), {"role"}), "manager");
  EXPECT_EQ(json_str(a.json(), {"org_id"}), client);
  const auto after = invited(client, "after@example.com", "agent");
  EXPECT_EQ(json_str(after, {"email", "from"}), "\"Acme Agency\" <hello@acme.test>");
  ASSERT_TRUE(wait_for_file(outbox() / (json_str(after, {"id"}) + ".eml")));
  auto m = as(manager.token);
  EXPECT_EQ(m->patch("/v1/orgs/" + root + "/members/" + owner.id, {{"role", "developer"}}).status, 200u);
}

}  // namespace
}  // namespace canopy::test
