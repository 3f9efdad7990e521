// canopy-usage-bench: how long the usage reports take to read on a wide tree
// (GET /v1/orgs/{id}/usage and GET /v1/orgs/{id}/usage/sub-orgs; persistence/usage_query.hpp).
//
// Builds a temporary LMDB store holding a year of usage buckets for N orgs (default 2,000; env
// CANOPY_USAGE_BENCH_ORGS): every org has one accepted batch per day for 365 days, each with events of
// three types, and a grant on the first of every month. The buckets are made the way the persistence
// writer makes them (UsageRollup::add on ChargeBatch / PaymentRecorded records, the ops committed in
// big batches), then the totals are checked against the generator's own sums before anything is timed.
//
// Measured:
//   OneOrg/366d         add_usage for one org over 366 days (two partial months by day, 11 by month)
//   OneOrg/30d          the default last_30_days range (by day only)
//   WideTree/366d       the sub-orgs report's work: one report per org over 366 days, summed the way the
//                       handler sums them (per-org report, then merged into the total)
//   WideTree/366d_daily_only  the same, but by-type and credits read from the daily buckets alone: what
//                       the monthly buckets save
//   WideTree/366d_spend_series_only  only the `daily` series of every org (366 buckets each): the floor
//                       the monthly buckets cannot lower
//
// Results and the exact command: docs/benchmarks.md, "Usage reports on wide trees".
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "domain/records.hpp"
#include "domain/time.hpp"
#include "domain/usage.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"
#include "persistence/store.hpp"
#include "persistence/usage_query.hpp"
#include "persistence/usage_rollup.hpp"

namespace {

using namespace canopy::domain;
using namespace canopy::persistence;

constexpr std::array<const char*, 3> kTypes = {"assistants.reply", "broadcasts.sms", "inbox.message"};
constexpr int kDays = 365;
constexpr std::uint64_t kFirstOrg = 1000;
constexpr std::size_t kOrgsPerCommit = 25;

struct Dataset {
  std::string dir;
  std::unique_ptr<Store> store;
  std::size_t orgs = 0;
  Day first_day = 0;       // the data covers first_day .. first_day + kDays - 1
  DayRange year;           // 366 days from first_day: partial month, 11 whole months, partial month
  DayRange last_30;        // the 30 days ending on the data's last day
  Micros total_spend = 0;  // over `year`, all orgs (the generator's own sum)
  Micros total_credits = 0;
  std::uint64_t buckets = 0;
  double build_seconds = 0;

  ~Dataset() {
    store.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
};

Micros cost_of(std::uint64_t org, int d, std::size_t type) {
  return static_cast<Micros>(100 + ((org * 7 + static_cast<std::uint64_t>(d) * 13 + type * 31) % 97) * 10);
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "canopy-usage-bench: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<Dataset> build(std::size_t orgs) {
  auto ds = std::make_unique<Dataset>();
  char tmpl[] = "/tmp/canopy_usage_bench_XXXXXX";
  if (!::mkdtemp(tmpl)) die("cannot make a temp dir");
  ds->dir = tmpl;
  Status status;
  ds->store = open_lmdb_store(ds->dir + "/data", LmdbOptions{}, status);
  if (!ds->store) die("cannot open the store: " + status.message);
  ds->orgs = orgs;
  ds->first_day = days_from_civil(CivilDate{2026, 1, 15});
  ds->year = DayRange{ds->first_day, ds->first_day + 365};
  ds->last_30 = DayRange{ds->first_day + kDays - 30, ds->first_day + kDays - 1};

  const auto started = std::chrono::steady_clock::now();
  UsageRollup rollup(*ds->store);
  WriteOps ops;
  std::uint64_t seq = 0;
  std::uint64_t payment = 1;
  for (std::size_t i = 0; i < orgs; ++i) {
    const OrgId org{kFirstOrg + i};
    for (int d = 0; d < kDays; ++d) {
      const Day day = ds->first_day + d;
      const Timestamp noon = static_cast<Timestamp>(day) * 86400 + 12 * 3600;
      if (civil_from_days(day).day == 1) {
        const Micros amount = 1'000'000 + static_cast<Micros>(i % 10) * 1000;
        rollup.add(++seq, PaymentRecorded{org, PaymentId{payment++}, PaymentKind::grant, PaymentStatus::succeeded, amount,
                                          noon - 3600, {}, "bench"},
                   started);
        ds->total_credits += amount;
      }
      ChargeBatch batch;
      batch.chain = {ChainHop{org, cycle_of(noon)}};
      batch.at = noon;
      std::vector<ChargeEvent> events;
      for (std::size_t t = 0; t < kTypes.size(); ++t) {
        const Micros cost = cost_of(raw(org), d, t);
        events.push_back(ChargeEvent{std::to_string(d) + "-" + std::to_string(t), kTypes[t], t + 1, cost, noon});
        ds->total_spend += cost;
      }
      batch.events = std::move(events);
      rollup.add(++seq, batch, started);
    }
    if ((i + 1) % kOrgsPerCommit == 0 || i + 1 == orgs) {
      rollup.write_all(ops);  // as at a checkpoint
      const Status s = ds->store->commit(ops.span());
      if (!s.ok()) die("commit failed: " + s.message);
      ops.clear();
      rollup.trim();
    }
  }
  ds->build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const Status s = ds->store->scan(Table::usage, {}, {}, [&](std::string_view, std::string_view) {
    ++ds->buckets;
    return true;
  });
  if (!s.ok()) die("scan failed: " + s.message);
  return ds;
}

Dataset& data() {
  static std::unique_ptr<Dataset> ds = [] {
    std::size_t orgs = 2000;
    if (const char* env = std::getenv("CANOPY_USAGE_BENCH_ORGS")) orgs = std::strtoul(env, nullptr, 10);
    if (orgs == 0) die("CANOPY_USAGE_BENCH_ORGS must be a positive number");
    auto built = build(orgs);
    std::fprintf(stderr, "canopy-usage-bench: %zu orgs x %d days x %zu types: %llu buckets, built in %.1f s\n", orgs,
                 kDays, kTypes.size(), static_cast<unsigned long long>(built->buckets), built->build_seconds);
    return built;
  }();
  return *ds;
}

// The sub-orgs report's work, as net/handlers_usage_reports.cpp does it: one report per org, each merged
// into the total.
UsageReport wide_report(const Dataset& ds, DayRange range) {
  UsageReport total = empty_report(range);
  for (std::size_t i = 0; i < ds.orgs; ++i) {
    UsageReport one = empty_report(range);
    const Status s = add_usage(*ds.store, OrgId{kFirstOrg + i}, range, one);
    if (!s.ok()) die("add_usage failed: " + s.message);
    total.total_spend_micros += one.total_spend_micros;
    total.total_credits_micros += one.total_credits_micros;
    for (std::size_t d = 0; d < one.daily.size(); ++d) total.daily[d] += one.daily[d];
    for (const auto& [type, t] : one.by_type) {
      auto& sum = total.by_type[type];
      sum.count += t.count;
      sum.quantity += t.quantity;
      sum.spend_micros += t.spend_micros;
    }
  }
  return total;
}

// The same report without the monthly buckets: every kind read day by day (the comparison).
void add_usage_daily_only(const Store& store, OrgId org, DayRange range, UsageReport& report) {
  const auto scan = [&](BucketKind kind, auto visit) {
    const std::string prefix = usage_prefix(raw(org), static_cast<std::uint8_t>(kind));
    const Status s = store.scan(Table::usage, prefix, usage_key(raw(org), static_cast<std::uint8_t>(kind), range.from),
                                [&](std::string_view key, std::string_view value) {
                                  const std::int32_t day = get_period(key.substr(prefix.size()));
                                  if (day > range.to) return false;
                                  const auto bucket = decode_bucket(value);
                                  if (!bucket) die("a bucket does not decode");
                                  visit(day, key.substr(usage_key_type_offset), *bucket);
                                  return true;
                                });
    if (!s.ok()) die("scan failed: " + s.message);
  };
  scan(BucketKind::spend_day, [&](std::int32_t day, std::string_view, const Bucket& b) {
    report.daily[static_cast<std::size_t>(day - range.from)] += b.micros;
    report.total_spend_micros += b.micros;
  });
  scan(BucketKind::usage_day, [&](std::int32_t, std::string_view type, const Bucket& b) {
    TypeUsage& t = report.by_type[std::string(type)];
    t.count += b.count;
    t.quantity += b.quantity;
    t.spend_micros += b.micros;
  });
  scan(BucketKind::credits_day,
       [&](std::int32_t, std::string_view, const Bucket& b) { report.total_credits_micros += b.micros; });
}

// Before timing anything: the reports must add up to what the generator wrote.
void verify(const Dataset& ds) {
  static bool done = false;
  if (done) return;
  done = true;
  const RangePlan plan = plan_range(ds.year);
  if (plan.months.size() != 11 || plan.spans.size() != 2) die("the 366-day range is not 11 months and 2 edges");
  const UsageReport all = wide_report(ds, ds.year);
  if (all.total_spend_micros != ds.total_spend) die("the wide report's spend differs from the generator's");
  if (all.total_credits_micros != ds.total_credits) die("the wide report's credits differ from the generator's");
  Micros by_type = 0;
  for (const auto& [type, t] : all.by_type) {
    by_type += t.spend_micros;
    if (t.count != ds.orgs * static_cast<std::size_t>(kDays)) die("a type's count differs from the generator's");
  }
  if (by_type != ds.total_spend) die("the by-type spend (monthly buckets) differs from the daily total");
  UsageReport daily = empty_report(ds.year);
  for (std::size_t i = 0; i < ds.orgs; ++i) add_usage_daily_only(*ds.store, OrgId{kFirstOrg + i}, ds.year, daily);
  if (daily.total_spend_micros != all.total_spend_micros || daily.total_credits_micros != all.total_credits_micros) {
    die("the daily-only report differs");
  }
}

void OneOrg(benchmark::State& state, bool year) {
  Dataset& ds = data();
  verify(ds);
  const DayRange range = year ? ds.year : ds.last_30;
  std::size_t i = 0;
  for (auto _ : state) {
    UsageReport r = empty_report(range);
    const Status s = add_usage(*ds.store, OrgId{kFirstOrg + i}, range, r);
    if (!s.ok()) die(s.message);
    benchmark::DoNotOptimize(r.total_spend_micros);
    i = (i + 1) % ds.orgs;
  }
  state.counters["days"] = static_cast<double>(range.days());
}

void WideTree(benchmark::State& state, bool monthly) {
  Dataset& ds = data();
  verify(ds);
  for (auto _ : state) {
    if (monthly) {
      UsageReport r = wide_report(ds, ds.year);
      benchmark::DoNotOptimize(r.total_spend_micros);
    } else {
      UsageReport total = empty_report(ds.year);
      for (std::size_t i = 0; i < ds.orgs; ++i) {
        add_usage_daily_only(*ds.store, OrgId{kFirstOrg + i}, ds.year, total);
      }
      benchmark::DoNotOptimize(total.total_spend_micros);
    }
  }
  state.counters["orgs"] = static_cast<double>(ds.orgs);
  state.counters["orgs_per_s"] = benchmark::Counter(static_cast<double>(ds.orgs) * static_cast<double>(state.iterations()),
                                                    benchmark::Counter::kIsRate);
}

// Only the daily spend series of every org (366 spend_day buckets each): the part of the wide report that
// the monthly buckets cannot shorten.
void WideTreeDailySeries(benchmark::State& state) {
  Dataset& ds = data();
  verify(ds);
  for (auto _ : state) {
    Micros total = 0;
    for (std::size_t i = 0; i < ds.orgs; ++i) {
      const OrgId org{kFirstOrg + i};
      const std::string prefix = usage_prefix(raw(org), static_cast<std::uint8_t>(BucketKind::spend_day));
      const Status s = ds.store->scan(Table::usage, prefix,
                                      usage_key(raw(org), static_cast<std::uint8_t>(BucketKind::spend_day), ds.year.from),
                                      [&](std::string_view key, std::string_view value) {
                                        if (get_period(key.substr(prefix.size())) > ds.year.to) return false;
                                        total += decode_bucket(value)->micros;
                                        return true;
                                      });
      if (!s.ok()) die(s.message);
    }
    if (total != ds.total_spend) die("the daily series does not add up");
    benchmark::DoNotOptimize(total);
  }
}

BENCHMARK_CAPTURE(OneOrg, 366d, true)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(OneOrg, 30d, false)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(WideTree, 366d, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(WideTree, 366d_daily_only, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(WideTreeDailySeries)->Name("WideTree/366d_spend_series_only")->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
