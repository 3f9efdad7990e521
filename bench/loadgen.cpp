// canopy-loadgen: creates an org forest on a local Canopy server, then drives its usage API and
// reports throughput, outcomes and latency percentiles.
//
//   canopy-loadgen --operator-token T [--roots 1000 --orgs-per-root 15 --depth 3]
//                  [--mode single|batch|probe] [--connections 64 --threads 1 --pipeline 1]
//                  [--rate R] [--duration 10 --warmup 1] [--max-requests N]
//                  [--save-forest F | --load-forest F] [--setup-only]
//
// Exit codes: 0 run done (at least one 2xx answer measured), 1 setup or load failed, 2 bad options
// (including a --url that is not loopback).
#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>

#include "bench/loadgen_forest.hpp"
#include "bench/loadgen_options.hpp"
#include "bench/loadgen_report.hpp"
#include "bench/loadgen_setup.hpp"
#include "bench/loadgen_worker.hpp"

namespace canopy::loadgen {
namespace {

constexpr std::size_t server_body_bytes_default = 1 << 20;  // the server's default body limit

// Eight hex digits that make this run's names, e-mail and event ids unique.
std::string make_run_tag() {
  std::random_device entropy;
  const auto now = static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
  const std::uint64_t mixed = SplitMix64{(std::uint64_t{entropy()} << 32) ^ now}.next();
  char tag[9];
  std::snprintf(tag, sizeof tag, "%08x", static_cast<unsigned>(mixed & 0xffffffffu));
  return tag;
}

// Gets the forest the load runs against: loaded, or planned and created. False on failure (printed).
bool prepare_forest(const Options& options, const Target& target, const std::string& run_tag, Forest& forest,
                    std::optional<SetupReport>& setup) {
  if (!options.load_forest.empty()) {
    auto loaded = load_forest(options.load_forest);
    if (!loaded.forest) {
      std::cerr << "canopy-loadgen: " << loaded.error << "\n";
      return false;
    }
    forest = std::move(*loaded.forest);
    std::cout << "forest: " << forest.orgs.size() << " orgs in " << forest.roots.size() << " trees from "
              << options.load_forest << "\n";
    return true;
  }
  forest = plan_forest(options);
  std::cout << "setup: creating " << forest.orgs.size() << " orgs in " << forest.roots.size() << " trees on "
            << options.url << " with " << options.setup_connections << " connections (run tag " << run_tag << ")"
            << std::endl;
  setup = run_setup(options, target, forest, run_tag);
  if (!setup->error.empty()) {
    std::cerr << "canopy-loadgen: setup failed after " << setup->requests << " requests: " << setup->error << "\n";
    return false;
  }
  print_setup(std::cout, *setup, forest.orgs.size(), forest.orgs_per_level());
  if (!options.save_forest.empty()) {
    if (const auto error = save_forest(forest, options.save_forest); !error.empty()) {
      std::cerr << "canopy-loadgen: " << error << "\n";
      return false;
    }
    std::cout << "setup: forest saved to " << options.save_forest << "\n";
  }
  return true;
}

bool can_connect(const Target& target) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket{io};
  boost::system::error_code ec;
  socket.connect(target.endpoint, ec);
  if (ec) std::cerr << "canopy-loadgen: cannot connect to " << target.endpoint << ": " << ec.message() << "\n";
  return !ec;
}

Clock::duration seconds(double value) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(value));
}

int run_load(const Options& options, const Target& target, const Forest& forest, const std::string& run_tag,
             const SetupReport* setup) {
  SharedRun run{options, target, {}, {}, {}};
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned i = 0; i < options.threads; ++i) {
    const std::uint32_t share = options.connections / options.threads + (i < options.connections % options.threads ? 1 : 0);
    workers.push_back(std::make_unique<Worker>(run, forest, run_tag, i, share));
  }
  if (options.mode == Mode::batch && workers[0]->workload().body_bytes_max() > server_body_bytes_default)
    std::cout << "warning: batch bodies may reach " << workers[0]->workload().body_bytes_max()
              << " bytes, over the server's default 1 MiB body limit\n";
  std::cout << "load: " << mode_name(options.mode) << ", " << options.connections << " connections, "
            << options.threads << (options.threads == 1 ? " thread, " : " threads, ") << options.warmup_s
            << " s warmup + " << options.duration_s
            << " s measured" << std::endl;

  run.start = Clock::now();
  run.warmup_end = run.start + seconds(options.warmup_s);
  run.deadline = run.warmup_end + seconds(options.duration_s);
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers.size(); ++i) threads.emplace_back([&worker = *workers[i]] { worker.run(); });
  workers[0]->run();
  for (auto& thread : threads) thread.join();

  Stats total;
  Clock::time_point finished = run.warmup_end;
  for (const auto& worker : workers) {
    total.merge(worker->stats());
    finished = std::max(finished, worker->finished_at());
  }
  const double measured_s = std::chrono::duration<double>(std::min(finished, run.deadline) - run.warmup_end).count();
  const std::size_t orgs = options.mode == Mode::probe ? 0 : forest.orgs.size();
  const RunSummary summary{options, total, std::max(measured_s, 0.0), orgs, setup};
  print_table(std::cout, summary);
  print_json_line(std::cout, summary);
  std::uint64_t ok = 0;
  for (int status = 200; status < 300; ++status) ok += total.by_status[static_cast<std::size_t>(status)];
  return ok > 0 ? 0 : 1;
}

int run_main(int argc, char** argv) {
  const ParsedOptions parsed = parse_options(argc, argv);
  if (!parsed.options) return parsed.exit_code;
  const Options& options = *parsed.options;
  const ResolvedTarget resolved = resolve_loopback_target(options.url);
  if (!resolved.target) {
    std::cerr << "canopy-loadgen: " << resolved.error << "\n";
    return 2;
  }
  const std::string run_tag = make_run_tag();
  Forest forest;
  std::optional<SetupReport> setup;
  const bool needs_forest = options.mode != Mode::probe || options.setup_only;
  if (needs_forest && !prepare_forest(options, *resolved.target, run_tag, forest, setup)) return 1;
  if (options.setup_only) return 0;
  if (!can_connect(*resolved.target)) return 1;
  return run_load(options, *resolved.target, forest, run_tag, setup ? &*setup : nullptr);
}

}  // namespace
}  // namespace canopy::loadgen

int main(int argc, char** argv) { return canopy::loadgen::run_main(argc, argv); }
