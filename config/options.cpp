#include "config/options.hpp"

#include <CLI/CLI.hpp>

#include <charconv>
#include <fstream>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "config/limits.hpp"

namespace canopy::config {
namespace {

// One configurable setting: how it is named in each source and how its text becomes a value.
struct Setting {
  std::string key;   // config-file key; flag is --key with '_' -> '-'; env is CANOPY_KEY
  std::string help;
  bool is_switch = false;
  // Stores the value or returns why it is invalid.
  std::function<std::optional<std::string>(Options&, const std::string&)> set;
};

template <class T>
std::optional<T> parse_number(const std::string& text) {
  T value{};
  const auto* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, value);
  if (r.ec != std::errc{} || r.ptr != end) return std::nullopt;
  return value;
}

// A whole number from min to max, stored as a T made from it (the number itself, or a duration
// counted in T's unit).
template <class T, class N = T>
Setting number(std::string key, std::string help, T Options::*field, std::type_identity_t<N> min, std::type_identity_t<N> max) {
  return Setting{key, std::move(help), false, [field, min, max](Options& o, const std::string& v) -> std::optional<std::string> {
    const auto n = parse_number<N>(v);
    if (!n || *n < min || *n > max) {
      return "must be a whole number from " + std::to_string(min) + " to " + std::to_string(max) + ", got '" + v + "'";
    }
    o.*field = T(*n);
    return std::nullopt;
  }};
}

template <class Duration>
Setting duration(std::string key, std::string help, Duration Options::*field, Duration min, Duration max) {
  return number<Duration, typename Duration::rep>(std::move(key), std::move(help), field, min.count(), max.count());
}

std::optional<bool> parse_bool(const std::string& v) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return std::nullopt;
}

Setting boolean(std::string key, std::string help, bool Options::*field) {
  return Setting{key, std::move(help), true, [field](Options& o, const std::string& v) -> std::optional<std::string> {
    const auto b = parse_bool(v);
    if (!b) return "must be true or false, got '" + v + "'";
    o.*field = *b;
    return std::nullopt;
  }};
}

Setting text(std::string key, std::string help, std::string Options::*field, bool allow_empty = false) {
  return Setting{key, std::move(help), false, [field, allow_empty](Options& o, const std::string& v) -> std::optional<std::string> {
    if (v.empty() && !allow_empty) return "must not be empty";
    o.*field = v;
    return std::nullopt;
  }};
}

std::optional<std::string> set_listen(Options& o, const std::string& v) {
  const auto colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0) return "must be HOST:PORT, got '" + v + "'";
  std::string host = v.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const auto port = parse_number<unsigned>(v.substr(colon + 1));
  if (!port || *port > 65535) return "port must be 0 to 65535, got '" + v.substr(colon + 1) + "'";
  o.listen_host = host;
  o.listen_port = static_cast<std::uint16_t>(*port);
  return std::nullopt;
}

std::optional<std::string> set_url(std::string Options::*field, Options& o, const std::string& v,
                                   std::initializer_list<std::string_view> schemes) {
  for (auto scheme : schemes) {
    if (v.rfind(std::string(scheme) + "://", 0) == 0 && v.size() > scheme.size() + 3) {
      o.*field = v;
      while (!(o.*field).empty() && (o.*field).back() == '/') (o.*field).pop_back();
      return std::nullopt;
    }
  }
  std::string expected;
  for (auto scheme : schemes) expected += (expected.empty() ? "" : " or ") + std::string(scheme) + "://…";
  return "must be a URL starting " + expected + ", got '" + v + "'";
}

std::vector<Setting> serve_settings() {
  std::vector<Setting> s;
  s.push_back({"listen", "HOST:PORT to listen on (default 127.0.0.1:8080)", false, set_listen});
  s.push_back(text("data_dir", "folder of the LMDB store (default ./var)", &Options::data_dir));
  s.push_back({"clock", "system or manual (manual enables POST /v1/admin/clock)", false,
               [](Options& o, const std::string& v) -> std::optional<std::string> {
                 if (v == "system") o.clock = ClockKind::system;
                 else if (v == "manual") o.clock = ClockKind::manual;
                 else return "must be system or manual, got '" + v + "'";
                 return std::nullopt;
               }});
  s.push_back({"public_url", "base URL for links in emails (default http://<listen>)", false,
               [](Options& o, const std::string& v) { return set_url(&Options::public_url, o, v, {"http", "https"}); }});
  s.push_back({"dns_server", "HOST:PORT of the DNS resolver for domain checks (default: the system's)", false,
               [](Options& o, const std::string& v) -> std::optional<std::string> {
                 Options probe;
                 if (auto err = set_listen(probe, v)) return err;
                 o.dns_server = v;
                 return std::nullopt;
               }});
  s.push_back({"smtp_url", "smtp:// or smtps:// server for invitation email (default: write .eml files)", false,
               [](Options& o, const std::string& v) { return set_url(&Options::smtp_url, o, v, {"smtp", "smtps"}); }});
  s.push_back(text("outbox", "folder for .eml files when no SMTP server is set (default ./outbox)", &Options::outbox_dir));
  s.push_back({"mail_from", "sender address of email from orgs without a contact email (default no-reply@<public-url host>)",
               false, [](Options& o, const std::string& v) -> std::optional<std::string> {
                 const auto at = v.find('@');
                 if (at == std::string::npos || at == 0 || at + 1 == v.size() || v.find('@', at + 1) != std::string::npos ||
                     v.find_first_of(" \t\r\n<>\"") != std::string::npos) {
                   return "must be an email address like no-reply@example.com, got '" + v + "'";
                 }
                 o.mail_from = v;
                 return std::nullopt;
               }});
  s.push_back(number<std::uint32_t>("invitation_expiry_hours", "hours an invitation link stays valid (default 168)",
                                    &Options::invitation_expiry_hours, 1, limits::invitation_expiry_hours_max));
  s.push_back(boolean("allow_private_webhooks", "allow webhook URLs on loopback or private addresses",
                      &Options::allow_private_webhooks));
  s.push_back(boolean("demo", "seed a demo agency with live usage", &Options::demo));
  s.push_back(number<std::size_t>("body_limit_bytes", "largest request body accepted", &Options::body_bytes_limit, 1024,
                                  limits::body_bytes_max));
  s.push_back(number<std::uint32_t>("max_depth", "levels of sub-organizations below a root", &Options::max_depth, 1,
                                    limits::depth_max));
  s.push_back(number<std::int64_t>("free_credits_micros", "monthly free allowance per owning user",
                                   &Options::free_credits_micros, 0, limits::amount_micros_max));
  s.push_back(number<std::uint32_t>("idempotency_retention_days", "days an accepted usage event id is remembered (a retry within them gets the first answer)",
                                    &Options::idempotency_retention_days, limits::idempotency_retention_days_min,
                                    limits::idempotency_retention_days_max));
  s.push_back(number<std::size_t>("stream_queue_messages", "WebSocket messages queued per connection before it is closed as too slow (1008)",
                                  &Options::stream_queue_messages, 1, limits::stream_queue_messages_max));
  s.push_back(number<std::size_t>("max_connections", "open HTTP connections at most", &Options::connections_max, limits::connections_min,
                                  limits::connections_max));
  s.push_back(number<unsigned>("io_threads", "Asio I/O threads", &Options::io_threads, 1, limits::threads_max));
  s.push_back(number<unsigned>("actor_threads", "CAF scheduler threads", &Options::actor_threads, 1, limits::threads_max));
  s.push_back({"scheduler_policy", "org actors' scheduler: sharing (a central queue, the actor a worker woke run next) or stealing (CAF's)", false,
               [](Options& o, const std::string& v) -> std::optional<std::string> {
                 if (v != "sharing" && v != "stealing") return "must be sharing or stealing, got '" + v + "'";
                 o.scheduler_policy = v;
                 return std::nullopt;
               }});
  s.push_back(duration("commit_window_us", "group-commit window in microseconds", &Options::commit_window,
                       std::chrono::microseconds{0}, limits::commit_window_max));
  s.push_back(duration("checkpoint_interval_ms", "how long dirty org state, accepted event ids and usage buckets may wait before they are written to LMDB",
                       &Options::checkpoint_interval, std::chrono::milliseconds{1}, limits::checkpoint_interval_max));
  // The operator token has an env twin and a file key, but no flag: a flag would show in `ps`.
  s.push_back(text("operator_token", "", &Options::operator_token));
  return s;
}

std::string flag_of(const std::string& key) {
  std::string f = "--" + key;
  for (auto& c : f) c = c == '_' ? '-' : c;
  return f;
}

std::string env_of(const std::string& key) {
  std::string e = "CANOPY_" + key;
  for (auto& c : e) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return e;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

// Reads `key = value` lines. Returns an error naming the file and line on anything malformed.
std::optional<std::string> read_config_file(const std::string& path, const std::vector<Setting>& settings,
                                            std::map<std::string, std::string>& out) {
  std::ifstream in(path);
  if (!in) return "--config: cannot read '" + path + "'";
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    line = trim(line);
    if (line.empty()) continue;
    const auto eq = line.find('=');
    const std::string where = path + ":" + std::to_string(number);
    if (eq == std::string::npos) return where + ": expected key = value";
    std::string key = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    bool known = false;
    for (const auto& s : settings) known = known || s.key == key;
    if (!known) return where + ": unknown key '" + key + "'";
    out[key] = value;
  }
  return std::nullopt;
}

}  // namespace

std::string version() { return CANOPY_VERSION; }

ParseResult parse(int argc, const char* const* argv, const GetEnv& getenv) {
  const auto settings = serve_settings();
  CLI::App app{"Canopy: organizations that nest, with exact hierarchical billing"};
  app.require_subcommand(1, 1);
  std::map<std::string, std::string> flags;
  std::map<std::string, bool> switches;

  auto* serve = app.add_subcommand("serve", "run the HTTP/WebSocket server");
  std::string config_file;
  serve->add_option("--config", config_file, "config file of key = value lines");
  for (const auto& s : settings) {
    if (s.help.empty()) continue;
    if (s.is_switch) {
      serve->add_flag_callback(flag_of(s.key), [&switches, key = s.key] { switches[key] = true; }, s.help);
    } else {
      serve->add_option_function<std::string>(flag_of(s.key), [&flags, key = s.key](const std::string& v) { flags[key] = v; },
                                              s.help);
    }
  }
  std::string target, out_dir;
  auto* check = app.add_subcommand("check", "offline audit of a data folder; exit 1 on any difference");
  check->add_option("DATA_DIR", target)->required();
  auto* backup = app.add_subcommand("backup", "consistent, compacted copy, safe while a server runs");
  backup->add_option("DATA_DIR", target)->required();
  backup->add_option("OUT_DIR", out_dir)->required();
  app.add_subcommand("version", "print the version");

  if (argc >= 2) {
    const std::string_view first = argv[1];
    if (!first.empty() && first[0] != '-' && first != "serve" && first != "check" && first != "backup" &&
        first != "version") {
      return {std::nullopt, 2,
              "canopy: unknown command '" + std::string(first) + "' (expected serve, check, backup or version)"};
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return {std::nullopt, 0, app.help()};
  } catch (const CLI::ParseError& e) {
    return {std::nullopt, 2, std::string("canopy: ") + e.what()};
  }

  Options o;
  o.command = app.get_subcommands().front()->get_name();
  o.target_dir = target;
  o.backup_out_dir = out_dir;
  if (o.command != "serve") return {o, 0, {}};

  if (config_file.empty()) {
    if (const char* env = getenv("CANOPY_CONFIG")) config_file = env;
  }
  std::map<std::string, std::string> file_values;
  if (!config_file.empty()) {
    if (auto err = read_config_file(config_file, settings, file_values)) return {std::nullopt, 2, "canopy: " + *err};
  }
  o.config_file = config_file;
  for (const auto& s : settings) {
    std::optional<std::string> value;
    std::string source;
    if (auto it = flags.find(s.key); it != flags.end()) {
      value = it->second, source = flag_of(s.key);
    } else if (switches.count(s.key)) {
      value = "true", source = flag_of(s.key);
    } else if (const char* env = getenv(env_of(s.key).c_str())) {
      value = env, source = env_of(s.key);
    } else if (auto f = file_values.find(s.key); f != file_values.end()) {
      value = f->second, source = config_file + ": " + s.key;
    }
    if (!value) continue;
    if (auto err = s.set(o, *value)) return {std::nullopt, 2, "canopy: " + source + " " + *err};
  }
  if (o.public_url.empty()) o.public_url = "http://" + o.listen_host + ":" + std::to_string(o.listen_port);
  if (o.mail_from.empty()) {
    // The host of the public URL: after the scheme, before any port, path or userinfo's end.
    std::string host = o.public_url.substr(o.public_url.find("://") + 3);
    host = host.substr(0, host.find_first_of("/?#"));
    if (const auto at = host.rfind('@'); at != std::string::npos) host = host.substr(at + 1);
    if (!host.empty() && host.front() == '[') host = host.substr(0, host.find(']') + 1);
    else host = host.substr(0, host.find(':'));
    o.mail_from = "no-reply@" + (host.empty() ? std::string("localhost") : host);
  }
  return {o, 0, {}};
}

}  // namespace canopy::config
