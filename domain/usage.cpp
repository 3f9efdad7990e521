#include "domain/usage.hpp"

#include "config/limits.hpp"
#include "domain/org.hpp"
#include "domain/records.hpp"

namespace canopy::domain {
namespace {

Day first_day(Cycle cycle) { return day_of(cycle_start(cycle)); }
Day last_day(Cycle cycle) { return day_of(cycle_end(cycle)) - 1; }

}  // namespace

std::variant<Error, DayRange> resolve_range(const std::optional<std::string>& range, const std::optional<std::string>& from,
                                            const std::optional<std::string>& to, Timestamp now) {
  const Day today = day_of(now);
  if (range && (from || to)) return invalid_field("range", "Send either range or from and to, not both");
  if (from || to) {
    if (!from) return invalid_field("from", "from is required with to (YYYY-MM-DD)");
    if (!to) return invalid_field("to", "to is required with from (YYYY-MM-DD)");
    const auto f = parse_day(*from);
    if (!f) return invalid_field("from", "from must be a day as YYYY-MM-DD");
    const auto t = parse_day(*to);
    if (!t) return invalid_field("to", "to must be a day as YYYY-MM-DD");
    if (*f > *t) return invalid_field("from", "from must not be after to");
    const DayRange r{*f, *t};
    if (r.days() > static_cast<std::int32_t>(limits::usage_range_days_max)) {
      return invalid_field("to", "A range covers at most " + std::to_string(limits::usage_range_days_max) + " days");
    }
    return r;
  }
  const std::string preset = range.value_or("last_30_days");
  if (preset == "last_7_days") return DayRange{today - 6, today};
  if (preset == "last_30_days") return DayRange{today - 29, today};
  const Cycle month = cycle_of(now);
  if (preset == "this_month") return DayRange{first_day(month), today};
  if (preset == "last_month") return DayRange{first_day(month - 1), last_day(month - 1)};
  return invalid_field("range", "range must be one of last_7_days, last_30_days, this_month, last_month");
}

std::optional<PendingCredits> pending_free_credits(const OrgState& org, Timestamp now, Micros free_credits_micros) {
  const Cycle current = cycle_of(now);
  if (current <= org.cycle) return std::nullopt;
  const CycleRolled rolled = rollover_to(org, current, free_credits_micros);
  if (rolled.free_credits_micros <= 0) return std::nullopt;
  // The materializer counts a rollover's credits on the first day of the cycle it rolls into.
  return PendingCredits{day_of(cycle_start(current)), rolled.free_credits_micros};
}

RangePlan plan_range(DayRange range) {
  RangePlan plan;
  Day day = range.from;
  while (day <= range.to) {
    const Cycle month = cycle_of(static_cast<Timestamp>(day) * seconds_per_day);
    const Day month_end = last_day(month);
    if (day == first_day(month) && month_end <= range.to) {
      plan.months.push_back(month);
    } else {
      const Day span_end = month_end < range.to ? month_end : range.to;
      if (!plan.spans.empty() && plan.spans.back().to + 1 == day) {
        plan.spans.back().to = span_end;
      } else {
        plan.spans.push_back(DayRange{day, span_end});
      }
    }
    day = month_end + 1;
  }
  return plan;
}

}  // namespace canopy::domain
