// Usage analytics: which days a report covers, and the buckets charges and credits are counted in.
//
// Every accepted charge is counted in its origin org's buckets in the same LMDB commit as the charge
// (persistence/usage_rollup.hpp), so a report read after a 200 includes it, and a month's usage total
// equals the spend the charges added. Days are UTC; a charge counts on the day it was accepted (the
// journal record's time), the same instant that decides its billing cycle.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/errors.hpp"
#include "domain/money.hpp"
#include "domain/time.hpp"

namespace canopy::domain {

// The days of a report, both ends included.
struct DayRange {
  Day from = 0;
  Day to = 0;
  std::int32_t days() const { return to - from + 1; }
  friend bool operator==(const DayRange&, const DayRange&) = default;
};

// `range` (a preset) or `from`+`to` (YYYY-MM-DD), as the query string gave them (nullopt: absent).
// Presets: last_7_days and last_30_days end today; this_month runs from its first day to today;
// last_month is the whole previous month. Neither given: last_30_days. Errors name the parameter:
// an unknown preset, a malformed day, only one of from/to, both a preset and days, from after to,
// more than limits::usage_range_days_max days.
std::variant<Error, DayRange> resolve_range(const std::optional<std::string>& range, const std::optional<std::string>& from,
                                            const std::optional<std::string>& to, Timestamp now);

// What a bucket counts. Charges go to the usage buckets of their event type, per day and per month,
// and to the all-types total per day; money in (grants, top-ups, auto-recharges, free credits,
// transfers in) to the credit buckets.
enum class BucketKind : std::uint8_t {
  usage_day = 1,     // per day, per event type
  usage_month = 2,   // per cycle, per event type
  spend_day = 3,     // per day, all types
  credits_day = 4,   // per day
  credits_month = 5, // per cycle
};

struct Bucket {
  std::uint64_t count = 0;     // events (credits: payments)
  std::uint64_t quantity = 0;  // summed event quantities (credits: 0)
  Micros micros = 0;           // spend, or credits
  std::uint64_t last_seq = 0;  // the last journal record counted: replaying it again adds nothing
  friend bool operator==(const Bucket&, const Bucket&) = default;
};

// The free credits of a cycle rollover that `org` has due at `now` but has not journaled yet (its
// first operation of the new cycle writes it), and the day they will be counted on; nullopt when none.
// Reports add them so they do not depend on whether something touched the org first, just as
// view_at() does for balances.
struct OrgState;
struct PendingCredits {
  Day day = 0;
  Micros micros = 0;
};
std::optional<PendingCredits> pending_free_credits(const OrgState& org, Timestamp now, Micros free_credits_micros);

// How to read a range cheaply: whole months from the monthly buckets, the days around them from the
// daily ones. `months` are the cycles entirely inside the range; `spans` the remaining day runs.
struct RangePlan {
  std::vector<Cycle> months;
  std::vector<DayRange> spans;
};
RangePlan plan_range(DayRange range);

}  // namespace canopy::domain
