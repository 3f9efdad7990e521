// canopy-parse-bench: what the gateway's I/O thread spends parsing usage bodies
// (net/json_in.hpp), per event, without a server, sockets or actors around it.
//
// Measured:
//   Batch/1000     POST /v1/usage:batch with 1,000 events over 4 orgs, as canopy-loadgen's
//                  `--batch-orgs 4` sends them (ids like "r1a2-3-1f", type, quantity, cost, org_id)
//   Batch/10000    the same at the contract's largest batch
//   Single         POST /v1/orgs/{id}/usage: one event
// Each iteration parses a fresh copy of the body (the parser pads and unescapes in place, as the
// server does with its request bodies). items_per_second is events per second on one core.
//
// Results and the exact command: docs/benchmarks.md, "Parsing usage batches".
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include "net/json_in.hpp"

namespace {

constexpr canopy::domain::Timestamp now = 1'700'000'000'000'000;

std::string event_json(std::size_t i, bool with_org) {
  char id[48];
  std::snprintf(id, sizeof id, "r1a2-3-%zx", i + 0x100000);
  std::string s = R"({"id":")";
  s += id;
  s += '"';
  if (with_org) {
    s += R"(,"org_id":"org_)";
    s += std::to_string(1000000 + i % 4);
    s += '"';
  }
  s += R"(,"type":"assistants.reply","quantity":1,"cost_micros":1})";
  return s;
}

std::string batch_body(std::size_t n) {
  std::string body = R"({"events":[)";
  for (std::size_t i = 0; i < n; ++i) {
    if (i) body += ',';
    body += event_json(i, true);
  }
  body += "]}";
  return body;
}

void Batch(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::string body = batch_body(n);
  std::vector<canopy::net::UsageEventIn> items;
  for (auto _ : state) {
    std::string copy = body;
    items.clear();
    auto err = canopy::net::parse_usage_batch(copy, now, items);
    if (err || items.size() != n) state.SkipWithError("the batch did not parse");
    benchmark::DoNotOptimize(items.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<benchmark::IterationCount>(n));
}
BENCHMARK(Batch)->Arg(1000)->Arg(10000);

void Single(benchmark::State& state) {
  const std::string body = event_json(7, false);
  for (auto _ : state) {
    std::string copy = body;
    canopy::net::UsageEventIn in;
    if (canopy::net::parse_usage_event(copy, now, in)) state.SkipWithError("the event did not parse");
    benchmark::DoNotOptimize(in.event.id.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(Single);

}  // namespace

BENCHMARK_MAIN();
