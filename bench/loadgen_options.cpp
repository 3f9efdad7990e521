#include "bench/loadgen_options.hpp"

#include <algorithm>
#include <cmath>
#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>

namespace canopy::loadgen {
namespace {

constexpr double amount_micros_max = 1e12;  // the server's limits::amount_micros_max

// Money options are read as doubles so "1e12" works, then must be whole numbers of micros.
bool to_micros(double value, const char* name, std::int64_t& out, std::string& error) {
  if (!(value >= 0.0 && value <= amount_micros_max) || std::floor(value) != value) {
    error = std::string{name} + " must be a whole number of micros in [0, 1e12]";
    return false;
  }
  out = static_cast<std::int64_t>(value);
  return true;
}

bool valid_event_type(const std::string& type) {
  const bool chars_ok = std::all_of(type.begin(), type.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
  });
  return chars_ok && !type.empty() && type.size() <= 64 && type.find('.') != std::string::npos;
}

// Checks that need more than one option; empty when all is well.
std::string cross_check(const Options& o) {
  if (o.connections < o.threads) return "--connections must be at least --threads";
  if (o.orgs_per_root > 1 && o.depth == 0) return "--depth must be at least 1 when --orgs-per-root > 1";
  if (!o.load_forest.empty() && !o.save_forest.empty()) return "--load-forest and --save-forest exclude each other";
  if (o.setup_only && !o.load_forest.empty()) return "--setup-only makes no sense with --load-forest";
  if (!valid_event_type(o.event_type)) return "--event-type must look like module.action ([a-z0-9_.], <= 64 bytes)";
  const bool needs_operator = o.load_forest.empty() && (o.mode != Mode::probe || o.setup_only);
  if (needs_operator && o.operator_token.empty())
    return "setup needs the operator token: --operator-token or CANOPY_OPERATOR_TOKEN";
  if (o.mode != Mode::probe && o.operator_token.empty() && o.usage_token.empty())
    return "the load phase needs a token: --usage-token, --operator-token or CANOPY_OPERATOR_TOKEN";
  return {};
}

void add_setup_options(CLI::App& app, Options& o, double& grant, double& limit) {
  app.add_option("--roots", o.roots, "root orgs to create (plan business)")->check(CLI::Range(1u, 1'000'000u));
  app.add_option("--orgs-per-root", o.orgs_per_root, "orgs in each tree, root included")
      ->check(CLI::Range(1u, 10'000u));
  app.add_option("--depth", o.depth, "most levels below a root")->check(CLI::Range(0u, 8u));
  app.add_option("--grant-micros", grant, "credits granted to each root");
  app.add_option("--limited-fraction", o.limited_fraction, "share of sub-orgs given a monthly spending limit")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--limit-micros", limit, "monthly spending limit of the limited sub-orgs");
  app.add_option("--setup-connections", o.setup_connections, "parallel connections for the setup")
      ->check(CLI::Range(1u, 512u));
  app.add_option("--save-forest", o.save_forest, "write the created forest's org ids to FILE");
  app.add_option("--load-forest", o.load_forest, "skip the setup and use the forest saved in FILE");
  app.add_flag("--setup-only", o.setup_only, "create the forest, then exit");
}

void add_load_options(CLI::App& app, Options& o, std::string& mode, double& cost) {
  app.add_option("--mode", mode, "single | batch | probe")->check(CLI::IsMember({"single", "batch", "probe"}));
  app.add_option("--connections", o.connections, "keep-alive connections, over all threads")
      ->check(CLI::Range(1u, 20'000u));
  app.add_option("--threads", o.threads, "I/O threads, each with its own connections")->check(CLI::Range(1u, 64u));
  app.add_option("--pipeline", o.pipeline, "requests in flight per connection")->check(CLI::Range(1u, 64u));
  app.add_option("--rate", o.rate, "open loop: requests/s in total on a fixed timetable (0: closed loop)")
      ->check(CLI::Range(0.0, 10'000'000.0));
  app.add_option("--duration", o.duration_s, "measured seconds, after the warmup")->check(CLI::Range(0.001, 86'400.0));
  app.add_option("--warmup", o.warmup_s, "seconds of load before measuring")->check(CLI::Range(0.0, 3'600.0));
  app.add_option("--drain", o.drain_s, "seconds to wait for answers after the deadline")->check(CLI::Range(0.0, 60.0));
  app.add_option("--max-requests", o.max_requests, "stop sending after this many requests (0: no cap)");
  app.add_option("--batch-size", o.batch_size, "events per usage:batch request")->check(CLI::Range(1u, 10'000u));
  app.add_option("--batch-orgs", o.batch_orgs,
                 "spread each batch over this many orgs picked at random, like one tenant's traffic (0: any org)")
      ->check(CLI::Range(0u, 10'000u));
  app.add_option("--cost-micros", cost, "cost of each event");
  app.add_option("--quantity", o.quantity, "quantity of each event")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1'000'000'000'000}));
  app.add_option("--event-type", o.event_type, "type of each event");
  app.add_option("--seed", o.seed, "seed of the forest shape and the org choice");
}

}  // namespace

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::single: return "single";
    case Mode::batch: return "batch";
    case Mode::probe: return "probe";
  }
  return "?";
}

ParsedOptions parse_options(int argc, char** argv) {
  Options o;
  std::string mode = "single";
  double grant = static_cast<double>(o.grant_micros);
  double limit = static_cast<double>(o.limit_micros);
  double cost = static_cast<double>(o.cost_micros);

  CLI::App app{"canopy-loadgen: creates an org forest on a local Canopy server, then loads its usage API"};
  app.option_defaults()->always_capture_default();
  app.add_option("--url", o.url, "server base URL; loopback only");
  app.add_option("--operator-token", o.operator_token, "operator token")->envname("CANOPY_OPERATOR_TOKEN");
  app.add_option("--usage-token", o.usage_token, "token for the usage requests (default: the operator token)");
  add_setup_options(app, o, grant, limit);
  add_load_options(app, o, mode, cost);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return {std::nullopt, code == 0 ? 0 : 2};
  }
  o.mode = mode == "batch" ? Mode::batch : mode == "probe" ? Mode::probe : Mode::single;
  std::string error;
  if (!to_micros(grant, "--grant-micros", o.grant_micros, error) ||
      !to_micros(limit, "--limit-micros", o.limit_micros, error) ||
      !to_micros(cost, "--cost-micros", o.cost_micros, error)) {
    std::cerr << "canopy-loadgen: " << error << "\n";
    return {std::nullopt, 2};
  }
  if (error = cross_check(o); !error.empty()) {
    std::cerr << "canopy-loadgen: " << error << "\n";
    return {std::nullopt, 2};
  }
  return {std::move(o), 0};
}

namespace {

struct UrlParts {
  std::string host;  // without IPv6 brackets
  std::string port;
  std::string host_header;
};

std::optional<UrlParts> split_url(const std::string& url, std::string& error) {
  const auto fail = [&error](const char* why) {
    error = why;
    return std::optional<UrlParts>{};
  };
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return fail("--url must start with http:// (TLS is not supported)");
  std::string rest = url.substr(scheme.size());
  if (const auto slash = rest.find('/'); slash != std::string::npos) {
    if (rest.substr(slash) != "/") return fail("--url must not have a path");
    rest.resize(slash);
  }
  UrlParts parts{rest, "80", rest};
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    const auto close = rest.find(']');
    if (close == std::string::npos) return fail("bad IPv6 literal in --url");
    parts.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return fail("bad --url");
      parts.port = rest.substr(close + 2);
    }
  } else if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
    parts.host = rest.substr(0, colon);
    parts.port = rest.substr(colon + 1);
  }
  const bool digits = !parts.port.empty() && parts.port.size() <= 5 &&
                      std::all_of(parts.port.begin(), parts.port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (parts.host.empty() || !digits || std::stoul(parts.port) < 1 || std::stoul(parts.port) > 65535)
    return fail("--url needs a host and a port in 1..65535");
  return parts;
}

bool is_loopback(const boost::asio::ip::address& address) {
  if (address.is_v4()) return (address.to_v4().to_uint() >> 24) == 127;
  const auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) return (boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_uint() >> 24) == 127;
  return v6.is_loopback();
}

}  // namespace

ResolvedTarget resolve_loopback_target(const std::string& url) {
  ResolvedTarget out;
  const auto parts = split_url(url, out.error);
  if (!parts) return out;
  boost::asio::io_context io;
  boost::asio::ip::tcp::resolver resolver{io};
  boost::system::error_code ec;
  const auto results = resolver.resolve(parts->host, parts->port, ec);
  if (ec || results.empty()) {
    out.error = "cannot resolve " + parts->host + ": " + ec.message();
    return out;
  }
  std::optional<boost::asio::ip::tcp::endpoint> chosen;
  for (const auto& entry : results) {
    const auto endpoint = entry.endpoint();
    if (!is_loopback(endpoint.address())) {
      out.error = "refusing --url " + url + ": " + parts->host + " resolves to " + endpoint.address().to_string() +
                  ", which is not a loopback address (only 127.0.0.0/8 and ::1 are allowed)";
      return out;
    }
    // Prefer IPv4: "localhost" often lists ::1 first while servers commonly listen on 127.0.0.1.
    if (!chosen || (endpoint.address().is_v4() && !chosen->address().is_v4())) chosen = endpoint;
  }
  out.target = Target{parts->host_header, *chosen};
  return out;
}

}  // namespace canopy::loadgen
