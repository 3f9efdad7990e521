#include "persistence/usage_query.hpp"

#include "persistence/codec.hpp"
#include "persistence/keys.hpp"

namespace canopy::persistence {

using namespace canopy::domain;

namespace {

constexpr std::uint8_t kind(BucketKind k) { return static_cast<std::uint8_t>(k); }

// Visits the buckets of `org` and kind `k` with period in [first, last], in order.
template <class F>
Status scan_periods(const Snapshot& store, OrgId org, BucketKind k, std::int32_t first, std::int32_t last, F visit) {
  Status bad;
  const std::string prefix = usage_prefix(raw(org), kind(k));
  Status s = store.scan(Table::usage, prefix, usage_key(raw(org), kind(k), first),
                        [&](std::string_view key, std::string_view value) {
                          const std::int32_t period = get_period(key.substr(prefix.size()));
                          if (period > last) return false;
                          const auto bucket = decode_bucket(value);
                          if (!bucket) {
                            bad = {Status::Code::corruption, "a usage bucket does not decode"};
                            return false;
                          }
                          visit(period, key.substr(usage_key_type_offset), *bucket);
                          return true;
                        });
  return s.ok() ? bad : s;
}

}  // namespace

UsageReport empty_report(DayRange range) {
  UsageReport r;
  r.range = range;
  r.daily.assign(static_cast<std::size_t>(range.days()), 0);
  return r;
}

Status add_usage(const Store& store, OrgId org, DayRange range, UsageReport& report) {
  return store.read([&](const Snapshot& snapshot) { return add_usage(snapshot, org, range, report); });
}

Status add_usage(const Snapshot& store, OrgId org, DayRange range, UsageReport& report) {
  // The daily series, and the total from it.
  Status s = scan_periods(store, org, BucketKind::spend_day, range.from, range.to,
                          [&](std::int32_t day, std::string_view, const Bucket& b) {
                            report.daily[static_cast<std::size_t>(day - range.from)] += b.micros;
                            report.total_spend_micros += b.micros;
                          });
  if (!s.ok()) return s;
  // By type and credits: whole months from the monthly buckets, the rest from the daily ones.
  const RangePlan plan = plan_range(range);
  const auto add_type = [&](std::int32_t, std::string_view type, const Bucket& b) {
    TypeUsage& t = report.by_type[std::string(type)];
    t.count += b.count;
    t.quantity += b.quantity;
    t.spend_micros += b.micros;
  };
  const auto add_credits = [&](std::int32_t, std::string_view, const Bucket& b) { report.total_credits_micros += b.micros; };
  // Months in a plan are consecutive, so one scan each covers them all.
  if (!plan.months.empty()) {
    s = scan_periods(store, org, BucketKind::usage_month, plan.months.front(), plan.months.back(), add_type);
    if (!s.ok()) return s;
    s = scan_periods(store, org, BucketKind::credits_month, plan.months.front(), plan.months.back(), add_credits);
    if (!s.ok()) return s;
  }
  for (const DayRange& span : plan.spans) {
    s = scan_periods(store, org, BucketKind::usage_day, span.from, span.to, add_type);
    if (!s.ok()) return s;
    s = scan_periods(store, org, BucketKind::credits_day, span.from, span.to, add_credits);
    if (!s.ok()) return s;
  }
  return {};
}

}  // namespace canopy::persistence
