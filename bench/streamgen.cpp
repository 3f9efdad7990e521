// canopy-streamgen: the live-stream fan-out benchmark. Opens many WebSocket connections on a local
// Canopy server's GET /v1/stream, each subscribed to a few orgs, charges those orgs with usage:batch
// at a fixed rate, and reports how long after a charge's acknowledgement each subscriber received a
// push showing it (streamgen_match.hpp says exactly what is measured).
//
//   canopy-streamgen --operator-token T [--orgs 100] [--connections 10000 --subscriptions 1]
//                    [--rate 50000 --batch-size 500 --batch-orgs 5] [--warmup 2 --duration 20]
//                    [--save-forest F | --load-forest F] [--setup-only] [--server-pid PID]
//
// Threads: the calling thread does the setup and then the charging; --stream-threads more each own a
// share of the WebSocket connections. Every phase is bounded in time (connect, charge, drain, settle).
// Loopback only. Exit codes: 0 samples measured, 1 setup or run failed, 2 bad options.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "bench/loadgen_forest.hpp"
#include "bench/loadgen_setup.hpp"
#include "bench/streamgen_charger.hpp"
#include "bench/streamgen_match.hpp"
#include "bench/streamgen_stream.hpp"

namespace canopy::streamgen {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct Options {
  std::string url = "http://127.0.0.1:8080";
  std::string operator_token;
  std::uint32_t orgs = 100;
  double grant_micros = 1e12;
  std::string save_forest;
  std::string load_forest;
  bool setup_only = false;
  std::uint32_t connections = 10'000;
  std::uint32_t subscriptions = 1;
  std::uint32_t stream_threads = 1;
  std::uint32_t connect_concurrency = 128;
  double connect_timeout_s = 120;
  double rate = 50'000;
  std::uint32_t batch_size = 500;
  std::uint32_t batch_orgs = 5;
  std::uint32_t charge_orgs = 0;
  bool subscribe_uncharged = false;
  std::uint32_t http_connections = 64;
  double warmup_s = 2;
  double duration_s = 20;
  double drain_s = 5;
  double settle_s = 1;
  std::int64_t cost_micros = 1000;
  int server_pid = 0;
};

std::optional<Options> parse(int argc, char** argv, int& exit_code) {
  Options o;
  if (const char* env = std::getenv("CANOPY_OPERATOR_TOKEN")) o.operator_token = env;
  CLI::App app{"canopy-streamgen: WebSocket stream fan-out benchmark (loopback only)"};
  app.add_option("--url", o.url, "server base URL, loopback only");
  app.add_option("--operator-token", o.operator_token, "operator token (default: $CANOPY_OPERATOR_TOKEN)");
  app.add_option("--orgs", o.orgs, "root orgs to create and charge (or to use from --load-forest)")
      ->check(CLI::Range(1u, 100'000u));
  app.add_option("--grant-micros", o.grant_micros, "credits granted to each org at setup")->check(CLI::Range(0.0, 1e12));
  app.add_option("--save-forest", o.save_forest, "write the created orgs to FILE (canopy-loadgen format)");
  app.add_option("--load-forest", o.load_forest, "skip the setup and use the roots of the forest in FILE");
  app.add_flag("--setup-only", o.setup_only, "create the orgs, then exit");
  app.add_option("--connections", o.connections, "WebSocket connections")->check(CLI::Range(1u, 60'000u));
  app.add_option("--subscriptions", o.subscriptions, "orgs each connection subscribes to")->check(CLI::Range(1u, 64u));
  app.add_option("--stream-threads", o.stream_threads, "threads reading the WebSocket connections")
      ->check(CLI::Range(1u, 16u));
  app.add_option("--connect-concurrency", o.connect_concurrency, "handshakes in progress at once, per stream thread")
      ->check(CLI::Range(1u, 4096u));
  app.add_option("--connect-timeout", o.connect_timeout_s, "seconds for every connection to open and subscribe")
      ->check(CLI::Range(1.0, 600.0));
  app.add_option("--rate", o.rate, "events/s to charge, open loop")->check(CLI::Range(1.0, 10'000'000.0));
  app.add_option("--batch-size", o.batch_size, "events per usage:batch")->check(CLI::Range(1u, 10'000u));
  app.add_option("--batch-orgs", o.batch_orgs, "orgs each batch's events are split over (round robin)")
      ->check(CLI::Range(1u, 10'000u));
  app.add_option("--charge-orgs", o.charge_orgs,
                 "charge only the first N orgs; subscriptions to the others hear nothing (0: charge all)")
      ->check(CLI::Range(0u, 100'000u));
  app.add_flag("--subscribe-uncharged", o.subscribe_uncharged,
               "subscribe only to the orgs past --charge-orgs, which are never charged: connections without pushes");
  app.add_option("--http-connections", o.http_connections, "batches in flight at most")->check(CLI::Range(1u, 256u));
  app.add_option("--warmup", o.warmup_s, "seconds of charging before measuring")->check(CLI::Range(0.0, 600.0));
  app.add_option("--duration", o.duration_s, "measured seconds of charging")->check(CLI::Range(0.1, 600.0));
  app.add_option("--drain", o.drain_s, "seconds to wait for batch answers after the last batch")->check(CLI::Range(0.1, 60.0));
  app.add_option("--settle", o.settle_s, "seconds to keep reading pushes after the last answer")->check(CLI::Range(0.1, 60.0));
  app.add_option("--cost-micros", o.cost_micros, "cost of each event")->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000}));
  app.add_option("--server-pid", o.server_pid, "report this process's CPU (per thread name) during the charging");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e);
    return std::nullopt;
  }
  std::string error;
  if (o.operator_token.empty()) error = "the operator token is needed: --operator-token or CANOPY_OPERATOR_TOKEN";
  if (o.subscriptions > o.orgs) error = "--subscriptions must be at most --orgs";
  if (o.charge_orgs > o.orgs) error = "--charge-orgs must be at most --orgs";
  if (o.batch_orgs > (o.charge_orgs != 0 ? o.charge_orgs : o.orgs)) error = "--batch-orgs must be at most the orgs charged";
  if (o.batch_orgs > o.batch_size) error = "--batch-orgs must be at most --batch-size";
  if (o.subscribe_uncharged && (o.charge_orgs == 0 || o.subscriptions > o.orgs - o.charge_orgs))
    error = "--subscribe-uncharged needs --charge-orgs and at least --subscriptions orgs past it";
  if (!o.load_forest.empty() && (!o.save_forest.empty() || o.setup_only)) error = "--load-forest excludes --save-forest and --setup-only";
  if (!error.empty()) {
    std::cerr << "canopy-streamgen: " << error << "\n";
    exit_code = 2;
    return std::nullopt;
  }
  return o;
}

std::string make_run_tag() {
  std::random_device entropy;
  char tag[16];
  std::snprintf(tag, sizeof tag, "sg%08x", static_cast<unsigned>(entropy() ^ static_cast<unsigned>(Clock::now().time_since_epoch().count())));
  return tag;
}

// Each connection needs a descriptor; the default soft limit (often 1,024) is far too low.
bool raise_fd_limit(std::size_t needed) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  if (limit.rlim_cur < needed) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, std::max<rlim_t>(needed, limit.rlim_cur));
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur >= needed) return true;
  std::cerr << "canopy-streamgen: need " << needed << " file descriptors, the hard limit is " << limit.rlim_max
            << " (raise it with ulimit -Hn as root)\n";
  return false;
}

// The org ids to charge: created now, or the roots of a saved forest.
bool prepare_orgs(const Options& o, const loadgen::Target& target, std::vector<std::string>& org_ids) {
  loadgen::Forest forest;
  if (!o.load_forest.empty()) {
    auto loaded = loadgen::load_forest(o.load_forest);
    if (!loaded.forest) {
      std::cerr << "canopy-streamgen: " << loaded.error << "\n";
      return false;
    }
    forest = std::move(*loaded.forest);
  } else {
    loadgen::Options lo;
    lo.url = o.url;
    lo.operator_token = o.operator_token;
    lo.roots = o.orgs;
    lo.orgs_per_root = 1;
    lo.depth = 0;
    lo.grant_micros = static_cast<std::int64_t>(o.grant_micros);
    lo.setup_connections = std::min<std::uint32_t>(32, o.orgs);
    forest = loadgen::plan_forest(lo);
    const auto report = loadgen::run_setup(lo, target, forest, make_run_tag());
    if (!report.error.empty()) {
      std::cerr << "canopy-streamgen: setup failed: " << report.error << "\n";
      return false;
    }
    std::cout << "setup: " << report.roots << " orgs, " << report.grants << " grants in " << std::fixed
              << std::setprecision(1) << report.seconds << " s" << std::endl;
    if (!o.save_forest.empty()) {
      if (const auto error = loadgen::save_forest(forest, o.save_forest); !error.empty()) {
        std::cerr << "canopy-streamgen: " << error << "\n";
        return false;
      }
    }
  }
  for (const auto root : forest.roots) {
    if (org_ids.size() == o.orgs) break;
    org_ids.push_back(forest.orgs[root].id);
  }
  if (org_ids.size() < o.orgs) {
    std::cerr << "canopy-streamgen: the forest has " << org_ids.size() << " roots, --orgs asks for " << o.orgs << "\n";
    return false;
  }
  return true;
}

// GET /metrics, as name -> value for the unlabelled lines. Empty on failure or after
// metrics_timeout (asynchronous steps, because Beast's deadlines bound only those: a server that
// cannot accept, out of descriptors say, must not hang the tool).
constexpr std::chrono::seconds metrics_timeout{5};

std::map<std::string, double> scrape_metrics(const loadgen::Target& target) {
  std::map<std::string, double> out;
  asio::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;
  http::request<http::empty_body> request{http::verb::get, "/metrics", 11};
  request.set(http::field::host, target.host_header);
  http::response<http::string_body> response;
  bool ok = false;
  stream.expires_after(metrics_timeout);  // one deadline for the whole exchange
  stream.async_connect(target.endpoint, [&](const boost::system::error_code& ec) {
    if (ec) return;
    http::async_write(stream, request, [&](const boost::system::error_code& wec, std::size_t) {
      if (wec) return;
      http::async_read(stream, buffer, response, [&](const boost::system::error_code& rec, std::size_t) { ok = !rec; });
    });
  });
  io.run();
  if (!ok) return out;
  std::istringstream lines{response.body()};
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos || line.find('{') != std::string::npos) continue;
    out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return out;
}

// Per thread of a process: seconds on a CPU and seconds runnable but waiting for one (the scheduler's
// own accounting, /proc/PID/task/TID/schedstat). The second says whether a thread was short of CPU
// (the machine is shared) or idle waiting for work.
struct ThreadTimes {
  double cpu_s = 0;
  double runq_wait_s = 0;
};

std::map<std::string, ThreadTimes> thread_times(int pid) {
  std::map<std::string, ThreadTimes> out;
  if (pid <= 0) return out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (const dirent* entry = readdir(d)) {
    if (entry->d_name[0] == '.') continue;
    const std::string task = dir + "/" + entry->d_name;
    std::ifstream comm{task + "/comm"};
    std::ifstream sched{task + "/schedstat"};
    std::string name;
    double run_ns = 0, wait_ns = 0;
    if (!std::getline(comm, name) || !(sched >> run_ns >> wait_ns)) continue;
    out[name + "/" + entry->d_name] = ThreadTimes{run_ns / 1e9, wait_ns / 1e9};
  }
  closedir(d);
  return out;
}

// Busy CPU seconds of the whole machine (all cores), from /proc/stat, split into normal-priority work
// and niced work: what else ran beside the server and this tool shows up as the difference, and on a
// shared machine it is often not zero. Niced processes (background builds) mostly yield to us.
struct MachineBusy {
  double normal_s = 0;
  double nice_s = 0;
};

MachineBusy machine_busy_s() {
  std::ifstream in{"/proc/stat"};
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  return MachineBusy{(user + system + irq + softirq + steal) / tick, nice / tick};
}

double self_cpu_s() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  return s(usage.ru_utime) + s(usage.ru_stime);
}

template <class F>
std::uint64_t sum_counter(const std::vector<std::unique_ptr<StreamShard>>& shards, F&& f) {
  std::uint64_t total = 0;
  for (const auto& s : shards) total += f(s->counters()).load(std::memory_order_relaxed);
  return total;
}

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

struct Phase {
  double wall_s = 0;
  double tool_cpu_s = 0;
  double machine_cpu_s = 0;       // normal priority, whole machine
  double machine_nice_cpu_s = 0;  // niced processes, whole machine
  double tool_runq_wait_s = 0;
  std::map<std::string, ThreadTimes> server_threads;  // by "name/tid", during the phase
  std::uint64_t pushes = 0;
};

int run(const Options& o) {
  const auto resolved = loadgen::resolve_loopback_target(o.url);
  if (!resolved.target) {
    std::cerr << "canopy-streamgen: " << resolved.error << "\n";
    return 2;
  }
  const loadgen::Target target = *resolved.target;
  if (!raise_fd_limit(std::size_t{o.connections} + o.http_connections + 64)) return 1;
  std::vector<std::string> org_ids;
  if (!prepare_orgs(o, target, org_ids)) return 1;
  if (o.setup_only) return 0;

  const Clock::time_point epoch = Clock::now();
  const auto metrics_before = scrape_metrics(target);

  // --- open and subscribe ---
  std::vector<std::unique_ptr<StreamShard>> shards;
  StreamConfig sc{target, o.operator_token, &org_ids, epoch, o.connect_concurrency, std::chrono::seconds(30), 20'000'000};
  for (std::uint32_t t = 0; t < o.stream_threads; ++t) shards.push_back(std::make_unique<StreamShard>(sc));
  // Connection c subscribes to orgs c, c + stride, c + 2 * stride… (mod the orgs it may pick from).
  const std::uint32_t first_org = o.subscribe_uncharged ? o.charge_orgs : 0;
  const std::uint32_t pickable = o.orgs - first_org;
  const std::uint32_t stride = std::max<std::uint32_t>(1, pickable / o.subscriptions);
  for (std::uint32_t c = 0; c < o.connections; ++c) {
    std::vector<std::uint32_t> orgs;
    for (std::uint32_t j = 0; j < o.subscriptions; ++j) orgs.push_back(first_org + (c + j * stride) % pickable);
    shards[c % o.stream_threads]->add_connection(orgs);
  }
  const std::uint64_t subs_wanted = std::uint64_t{o.connections} * o.subscriptions;
  std::cout << "stream: opening " << o.connections << " connections, " << subs_wanted << " subscriptions over "
            << o.orgs << " orgs" << std::endl;
  const auto connect_start = Clock::now();
  for (auto& s : shards) s->start();
  const auto connect_deadline = connect_start + std::chrono::duration<double>(o.connect_timeout_s);
  while (Clock::now() < connect_deadline) {
    const auto opened = sum_counter(shards, [](const StreamCounters& c) -> const auto& { return c.opened; });
    const auto failed = sum_counter(shards, [](const StreamCounters& c) -> const auto& { return c.connect_failed; });
    const auto subscribed = sum_counter(shards, [](const StreamCounters& c) -> const auto& { return c.subscribed; });
    if (subscribed == subs_wanted || (opened + failed == o.connections && subscribed == opened * o.subscriptions)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double connect_s = std::chrono::duration<double>(Clock::now() - connect_start).count();
  const auto opened = sum_counter(shards, [](const StreamCounters& c) -> const auto& { return c.opened; });
  const auto subscribed = sum_counter(shards, [](const StreamCounters& c) -> const auto& { return c.subscribed; });
  const auto connect_failed = sum_counter(shards, [](const StreamCounters& c) -> const auto& { return c.connect_failed; });
  std::cout << "stream: " << opened << " open, " << connect_failed << " failed, "
            << o.connections - std::min<std::uint64_t>(o.connections, opened + connect_failed) << " still opening, "
            << subscribed << " subscribed in " << std::fixed << std::setprecision(1) << connect_s << " s" << std::endl;
  const auto metrics_open = scrape_metrics(target);

  // --- charge, then let the last pushes arrive ---
  std::cout << "charge: " << o.rate << " events/s as batches of " << o.batch_size << " over " << o.batch_orgs
            << " orgs, " << o.warmup_s << " s warmup + " << o.duration_s << " s measured" << std::endl;
  const auto pushes_counter = [](const StreamCounters& c) -> const auto& { return c.pushes; };
  Phase phase;
  const auto server_threads_0 = thread_times(o.server_pid);
  const auto tool_threads_0 = thread_times(static_cast<int>(getpid()));
  const double tool_cpu_0 = self_cpu_s();
  const MachineBusy machine_cpu_0 = machine_busy_s();
  const std::uint64_t pushes_0 = sum_counter(shards, pushes_counter);
  const auto charge_start = Clock::now();
  ChargerConfig cc;
  cc.target = target;
  cc.token = o.operator_token;
  cc.org_ids = &org_ids;
  cc.epoch = epoch;
  cc.run_tag = make_run_tag();
  cc.rate_events_per_s = o.rate;
  cc.batch_size = o.batch_size;
  cc.batch_orgs = o.batch_orgs;
  cc.charge_orgs = o.charge_orgs;
  cc.http_connections = o.http_connections;
  cc.warmup_s = o.warmup_s;
  cc.duration_s = o.duration_s;
  cc.drain_s = o.drain_s;
  cc.cost_micros = o.cost_micros;
  ChargerResult charged = run_charger(cc);
  std::this_thread::sleep_for(std::chrono::duration<double>(o.settle_s));
  phase.wall_s = std::chrono::duration<double>(Clock::now() - charge_start).count();
  phase.tool_cpu_s = self_cpu_s() - tool_cpu_0;
  const MachineBusy machine_cpu_1 = machine_busy_s();
  phase.machine_cpu_s = machine_cpu_1.normal_s - machine_cpu_0.normal_s;
  phase.machine_nice_cpu_s = machine_cpu_1.nice_s - machine_cpu_0.nice_s;
  phase.pushes = sum_counter(shards, pushes_counter) - pushes_0;
  const auto server_threads_1 = thread_times(o.server_pid);
  for (const auto& [name, t] : thread_times(static_cast<int>(getpid()))) {
    const auto it = tool_threads_0.find(name);
    phase.tool_runq_wait_s += t.runq_wait_s - (it == tool_threads_0.end() ? 0.0 : it->second.runq_wait_s);
  }
  for (const auto& [name, t] : server_threads_1) {
    const auto it = server_threads_0.find(name);
    const ThreadTimes before = it == server_threads_0.end() ? ThreadTimes{} : it->second;
    phase.server_threads[name] = ThreadTimes{t.cpu_s - before.cpu_s, t.runq_wait_s - before.runq_wait_s};
  }
  const auto metrics_after = scrape_metrics(target);
  for (auto& s : shards) s->stop();

  // --- match and report ---
  std::vector<const Subscription*> subs;
  std::map<unsigned, std::uint64_t> close_codes;
  for (const auto& s : shards) {
    const auto part = s->subscriptions();
    subs.insert(subs.end(), part.begin(), part.end());
    for (const auto& [code, n] : s->close_codes()) close_codes[code] += n;
  }
  const MatchResult matched = match_acks_to_pushes(charged.acks, subs);
  const auto counter = [&](auto member) {
    return sum_counter(shards, [member](const StreamCounters& c) -> const auto& { return c.*member; });
  };
  const std::uint64_t closed = counter(&StreamCounters::closed_by_server);
  const std::uint64_t read_errors = counter(&StreamCounters::read_errors);
  const auto metric_delta = [&](const std::string& name, const std::map<std::string, double>& a,
                                const std::map<std::string, double>& b) {
    const auto ia = a.find(name), ib = b.find(name);
    return ia == a.end() || ib == b.end() ? -1.0 : ib->second - ia->second;
  };
  const auto metric = [](const std::string& name, const std::map<std::string, double>& m) {
    const auto it = m.find(name);
    return it == m.end() ? -1.0 : it->second;
  };
  double server_cpu_total = 0;
  double server_runq_wait_total = 0;
  for (const auto& [name, t] : phase.server_threads) {
    server_cpu_total += t.cpu_s;
    server_runq_wait_total += t.runq_wait_s;
  }
  const double events_per_s = static_cast<double>(charged.events_accepted_measured) / o.duration_s;
  const auto& h = matched.latency_ns;

  std::cout << std::fixed << std::setprecision(2);
  std::cout << "charge: " << charged.batches_sent << "/" << charged.batches_due << " batches sent (" << charged.batches_late
            << " late, " << charged.batches_skipped << " skipped), " << charged.batches_acked << " acked, "
            << charged.batches_failed << " failed, " << charged.http_errors << " http errors; events accepted "
            << charged.events_accepted << ", refused " << charged.events_refused << "\n";
  for (const auto& [code, n] : charged.refused_by_code) std::cout << "  refused " << code << ": " << n << "\n";
  std::cout << "charge: " << std::setprecision(0) << events_per_s << " events/s accepted in the measured window; batch due->ack p50 "
            << std::setprecision(2) << ms(charged.batch_latency_ns.percentile(50)) << " p99 "
            << ms(charged.batch_latency_ns.percentile(99)) << " max " << ms(charged.batch_latency_ns.max()) << " ms\n";
  std::cout << "stream: " << phase.pushes << " pushes during charging (" << std::setprecision(0)
            << static_cast<double>(phase.pushes) / phase.wall_s << "/s), closed by server " << closed
            << ", lost " << read_errors << ", error messages " << counter(&StreamCounters::error_messages)
            << ", unparsed " << counter(&StreamCounters::unparsed) << "\n";
  for (const auto& [code, n] : close_codes) std::cout << "  close code " << code << ": " << n << "\n";
  std::cout << "ack->push: " << h.count() << " samples (" << matched.before_ack << " push before ack, "
            << matched.missing << " never shown), p50 " << std::setprecision(2) << ms(h.percentile(50)) << " p90 "
            << ms(h.percentile(90)) << " p99 " << ms(h.percentile(99)) << " p99.9 " << ms(h.percentile(99.9))
            << " max " << ms(h.max()) << " ms\n";
  std::cout << "cpu over " << phase.wall_s << " s: tool " << phase.tool_cpu_s / phase.wall_s << " cores (+"
            << phase.tool_runq_wait_s / phase.wall_s << " waiting)";
  if (o.server_pid > 0) {
    std::cout << ", server " << server_cpu_total / phase.wall_s << " cores (+" << server_runq_wait_total / phase.wall_s
              << " waiting for a CPU; by thread, cores running/waiting:";
    for (const auto& [name, t] : phase.server_threads) {
      if (t.cpu_s / phase.wall_s < 0.005 && t.runq_wait_s / phase.wall_s < 0.005) continue;
      std::cout << " " << name << " " << t.cpu_s / phase.wall_s << "/" << t.runq_wait_s / phase.wall_s;
    }
    std::cout << ")";
  }
  std::cout << ", whole machine " << phase.machine_cpu_s / phase.wall_s << " of " << std::thread::hardware_concurrency()
            << " cores at normal priority + " << phase.machine_nice_cpu_s / phase.wall_s << " niced";
  // -1: /metrics did not answer (then the JSON line carries -1 too).
  const auto shown = [](double value) { return value < 0 ? std::string{"n/a"} : std::to_string(std::llround(value)); };
  std::cout << "\nserver: canopy_stream_pushes_total +"
            << shown(metric_delta("canopy_stream_pushes_total", metrics_open, metrics_after))
            << ", canopy_stream_slow_closes_total +"
            << shown(metric_delta("canopy_stream_slow_closes_total", metrics_before, metrics_after))
            << ", canopy_stream_connections " << shown(metric("canopy_stream_connections", metrics_after)) << "\n";

  // One JSON line for scripts (bench/run_stream.sh).
  std::ostringstream j;
  j << std::fixed << std::setprecision(3);
  j << "{\"connections\":" << o.connections << ",\"opened\":" << opened << ",\"connect_failed\":" << connect_failed
    << ",\"subscribed\":" << subscribed << ",\"connect_s\":" << connect_s << ",\"orgs\":" << o.orgs
    << ",\"subscriptions_per_connection\":" << o.subscriptions << ",\"rate_target\":" << o.rate
    << ",\"batch_size\":" << o.batch_size << ",\"batch_orgs\":" << o.batch_orgs << ",\"events_per_s\":" << events_per_s
    << ",\"events_refused\":" << charged.events_refused << ",\"batches_late\":" << charged.batches_late
    << ",\"batches_skipped\":" << charged.batches_skipped << ",\"batches_failed\":" << charged.batches_failed
    << ",\"batch_p50_ms\":" << ms(charged.batch_latency_ns.percentile(50))
    << ",\"batch_p99_ms\":" << ms(charged.batch_latency_ns.percentile(99)) << ",\"pushes\":" << phase.pushes
    << ",\"pushes_per_s\":" << static_cast<double>(phase.pushes) / phase.wall_s << ",\"samples\":" << h.count()
    << ",\"before_ack\":" << matched.before_ack << ",\"missing\":" << matched.missing
    << ",\"p50_ms\":" << ms(h.percentile(50)) << ",\"p90_ms\":" << ms(h.percentile(90))
    << ",\"p99_ms\":" << ms(h.percentile(99)) << ",\"p999_ms\":" << ms(h.percentile(99.9)) << ",\"max_ms\":" << ms(h.max())
    << ",\"closed_by_server\":" << closed << ",\"lost\":" << read_errors
    << ",\"error_messages\":" << counter(&StreamCounters::error_messages)
    << ",\"records_dropped\":" << counter(&StreamCounters::records_dropped)
    << ",\"baseline_spread_orgs\":" << matched.orgs_baseline_spread
    << ",\"server_pushes\":" << metric_delta("canopy_stream_pushes_total", metrics_open, metrics_after)
    << ",\"server_slow_closes\":" << metric_delta("canopy_stream_slow_closes_total", metrics_before, metrics_after)
    << ",\"tool_cores\":" << phase.tool_cpu_s / phase.wall_s
    << ",\"tool_runq_wait_cores\":" << phase.tool_runq_wait_s / phase.wall_s << ",\"server_cores\":" << server_cpu_total / phase.wall_s
    << ",\"server_runq_wait_cores\":" << server_runq_wait_total / phase.wall_s << ",\"machine_cores\":" << phase.machine_cpu_s / phase.wall_s
    << ",\"machine_nice_cores\":" << phase.machine_nice_cpu_s / phase.wall_s
    << "}";
  std::cout << j.str() << std::endl;
  return h.count() > 0 ? 0 : 1;
}

}  // namespace
}  // namespace canopy::streamgen

int main(int argc, char** argv) {
  int exit_code = 0;
  const auto options = canopy::streamgen::parse(argc, argv, exit_code);
  if (!options) return exit_code;
  return canopy::streamgen::run(*options);
}
