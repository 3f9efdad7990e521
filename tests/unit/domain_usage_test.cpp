// Goal: the days a usage report covers (CONTRACT.md "Usage", GET /v1/orgs/{id}/usage) and how they are
// read from the buckets (domain/usage.hpp).
//
// resolve_range: the presets end today (UTC), this_month starts on the first of the month, last_month is
// the whole previous month, whatever the month's length (28, 29, 30, 31 days) and across a year end;
// from/to are inclusive days; nothing given means last_30_days. Every refusal is invalid_request and
// names the parameter at fault in details.field.
//
// plan_range: a range is split into whole months (read from the monthly buckets) and the day runs at its
// edges (read from the daily ones); together they cover every day of the range exactly once.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <set>
#include <string>
#include <variant>

#include "config/limits.hpp"
#include "domain/usage.hpp"

using namespace canopy::domain;

namespace {

using Opt = std::optional<std::string>;
const Opt none = std::nullopt;

Day day(int y, unsigned m, unsigned d) { return days_from_civil(CivilDate{y, m, d}); }
Cycle month(int y, unsigned m) { return static_cast<Cycle>((y - 1970) * 12 + static_cast<int>(m) - 1); }
Timestamp at(const char* rfc3339) {
  const auto t = parse_rfc3339(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t.value_or(0);
}
DayRange days(Day from, Day to) { return DayRange{from, to}; }

std::string show(const DayRange& r) { return format_day(r.from) + ".." + format_day(r.to); }

// The range resolve_range gives, or a failure naming the error.
DayRange ok(const Opt& range, const Opt& from, const Opt& to, Timestamp now) {
  auto r = resolve_range(range, from, to, now);
  if (const auto* err = std::get_if<Error>(&r)) {
    ADD_FAILURE() << "refused: " << err->message;
    return {};
  }
  return std::get<DayRange>(r);
}

// The parameter a refusal names (details.field), "" if it was accepted or names nothing.
std::string refused_field(const Opt& range, const Opt& from, const Opt& to, Timestamp now) {
  auto r = resolve_range(range, from, to, now);
  const auto* err = std::get_if<Error>(&r);
  if (!err) {
    ADD_FAILURE() << "accepted as " << show(std::get<DayRange>(r));
    return "";
  }
  EXPECT_EQ(err->code, Errc::invalid_request) << err->message;
  EXPECT_FALSE(err->message.empty());
  for (const auto& [key, value] : err->details) {
    if (key == "field" && std::holds_alternative<std::string>(value)) return std::get<std::string>(value);
  }
  ADD_FAILURE() << "no details.field in: " << err->message;
  return "";
}

DayRange preset(const char* name, Timestamp now) { return ok(std::string(name), none, none, now); }

}  // namespace

// --- presets ----------------------------------------------------------------------------------------

TEST(UsageRange, Last7DaysEndsTodayAndHasSevenDays) {
  const auto r = preset("last_7_days", at("2027-06-15T13:00:00Z"));
  EXPECT_EQ(r, days(day(2027, 6, 9), day(2027, 6, 15))) << show(r);
  EXPECT_EQ(r.days(), 7);
}

TEST(UsageRange, Last30DaysEndsTodayAndHasThirtyDays) {
  const auto r = preset("last_30_days", at("2027-06-15T13:00:00Z"));
  EXPECT_EQ(r, days(day(2027, 5, 17), day(2027, 6, 15))) << show(r);
  EXPECT_EQ(r.days(), 30);
}

TEST(UsageRange, NoParametersMeansLast30Days) {
  const Timestamp now = at("2027-06-15T13:00:00Z");
  EXPECT_EQ(ok(none, none, none, now), preset("last_30_days", now));
}

TEST(UsageRange, TodayIsTheUtcDayOfNowAtBothEndsOfTheDay) {
  EXPECT_EQ(preset("last_7_days", at("2027-06-15T00:00:00Z")).to, day(2027, 6, 15));
  EXPECT_EQ(preset("last_7_days", at("2027-06-15T23:59:59Z")).to, day(2027, 6, 15));
  // A local time with an offset is the UTC day it falls on.
  EXPECT_EQ(preset("last_7_days", at("2027-06-15T23:30:00-02:00")).to, day(2027, 6, 16));
}

TEST(UsageRange, LastDaysReachBackAcrossAMonthAndAYearEnd) {
  const Timestamp now = at("2027-01-03T08:00:00Z");
  EXPECT_EQ(preset("last_7_days", now), days(day(2026, 12, 28), day(2027, 1, 3)));
  EXPECT_EQ(preset("last_30_days", now), days(day(2026, 12, 5), day(2027, 1, 3)));
}

TEST(UsageRange, LastDaysReachBackAcrossALeapDay) {
  const Timestamp now = at("2028-03-02T08:00:00Z");
  EXPECT_EQ(preset("last_7_days", now), days(day(2028, 2, 25), day(2028, 3, 2)));
  EXPECT_EQ(preset("last_30_days", now), days(day(2028, 2, 2), day(2028, 3, 2)));
  // In a common year the same week reaches one day further back into February.
  EXPECT_EQ(preset("last_7_days", at("2027-03-02T08:00:00Z")), days(day(2027, 2, 24), day(2027, 3, 2)));
}

TEST(UsageRange, ThisMonthRunsFromTheFirstToToday) {
  EXPECT_EQ(preset("this_month", at("2027-06-15T13:00:00Z")), days(day(2027, 6, 1), day(2027, 6, 15)));
}

TEST(UsageRange, ThisMonthOnTheFirstIsOneDay) {
  const auto r = preset("this_month", at("2027-06-01T00:00:00Z"));
  EXPECT_EQ(r, days(day(2027, 6, 1), day(2027, 6, 1)));
  EXPECT_EQ(r.days(), 1);
}

TEST(UsageRange, ThisMonthOnTheLastSecondOfTheMonthIsTheWholeMonth) {
  EXPECT_EQ(preset("this_month", at("2027-01-31T23:59:59Z")), days(day(2027, 1, 1), day(2027, 1, 31)));
  EXPECT_EQ(preset("this_month", at("2028-02-29T23:59:59Z")), days(day(2028, 2, 1), day(2028, 2, 29)));
  // One second later it is a new month.
  EXPECT_EQ(preset("this_month", at("2028-03-01T00:00:00Z")), days(day(2028, 3, 1), day(2028, 3, 1)));
}

TEST(UsageRange, LastMonthIsTheWholePreviousMonth) {
  EXPECT_EQ(preset("last_month", at("2027-06-15T13:00:00Z")), days(day(2027, 5, 1), day(2027, 5, 31)));
  EXPECT_EQ(preset("last_month", at("2027-05-15T13:00:00Z")), days(day(2027, 4, 1), day(2027, 4, 30)));
}

TEST(UsageRange, LastMonthInJanuaryIsDecemberOfThePreviousYear) {
  const auto r = preset("last_month", at("2027-01-01T00:00:00Z"));
  EXPECT_EQ(r, days(day(2026, 12, 1), day(2026, 12, 31))) << show(r);
  EXPECT_EQ(r.days(), 31);
}

TEST(UsageRange, LastMonthInMarchIsFebruaryWithItsLeapDay) {
  const auto leap = preset("last_month", at("2028-03-01T00:00:00Z"));
  EXPECT_EQ(leap, days(day(2028, 2, 1), day(2028, 2, 29))) << show(leap);
  EXPECT_EQ(leap.days(), 29);
  const auto common = preset("last_month", at("2027-03-31T23:59:59Z"));
  EXPECT_EQ(common, days(day(2027, 2, 1), day(2027, 2, 28))) << show(common);
  EXPECT_EQ(common.days(), 28);
  // 2100 is not a leap year (divisible by 100, not by 400); 2000 was.
  EXPECT_EQ(preset("last_month", at("2100-03-10T00:00:00Z")).days(), 28);
  EXPECT_EQ(preset("last_month", at("2000-03-10T00:00:00Z")).days(), 29);
}

TEST(UsageRange, LastMonthOnTheLastSecondOfAMonthIsStillThePreviousOne) {
  EXPECT_EQ(preset("last_month", at("2027-07-31T23:59:59Z")), days(day(2027, 6, 1), day(2027, 6, 30)));
}

// --- from/to -----------------------------------------------------------------------------------------

TEST(UsageRange, FromAndToAreInclusiveDays) {
  const auto r = ok(none, std::string("2027-02-27"), std::string("2027-03-02"), at("2027-06-15T13:00:00Z"));
  EXPECT_EQ(r, days(day(2027, 2, 27), day(2027, 3, 2)));
  EXPECT_EQ(r.days(), 4);
}

TEST(UsageRange, FromEqualToIsOneDay) {
  const auto r = ok(none, std::string("2028-02-29"), std::string("2028-02-29"), at("2028-06-15T13:00:00Z"));
  EXPECT_EQ(r, days(day(2028, 2, 29), day(2028, 2, 29)));
  EXPECT_EQ(r.days(), 1);
}

TEST(UsageRange, FromToMayLieInThePastOrTheFutureOfNow) {
  const Timestamp now = at("2027-06-15T13:00:00Z");
  EXPECT_EQ(ok(none, std::string("2019-12-30"), std::string("2020-01-02"), now), days(day(2019, 12, 30), day(2020, 1, 2)));
  EXPECT_EQ(ok(none, std::string("2030-01-01"), std::string("2030-01-31"), now), days(day(2030, 1, 1), day(2030, 1, 31)));
}

TEST(UsageRange, ExactlyTheMaximumNumberOfDaysIsAccepted) {
  ASSERT_EQ(canopy::limits::usage_range_days_max, 366u);
  const Timestamp now = at("2027-06-15T13:00:00Z");
  // A whole leap year.
  EXPECT_EQ(ok(none, std::string("2028-01-01"), std::string("2028-12-31"), now).days(), 366);
  // 366 days across the leap day, not aligned to months.
  EXPECT_EQ(ok(none, std::string("2027-03-15"), std::string("2028-03-14"), now).days(), 366);
}

// --- refusals ----------------------------------------------------------------------------------------

TEST(UsageRange, OneDayOverTheMaximumIsRefusedNamingTo) {
  const Timestamp now = at("2027-06-15T13:00:00Z");
  EXPECT_EQ(refused_field(none, std::string("2028-01-01"), std::string("2029-01-01"), now), "to");  // 367 days
  EXPECT_EQ(refused_field(none, std::string("2026-12-31"), std::string("2028-01-01"), now), "to");
}

TEST(UsageRange, AnUnknownPresetIsRefusedNamingRange) {
  const Timestamp now = at("2027-06-15T13:00:00Z");
  for (const char* bad : {"last_week", "LAST_7_DAYS", "last_7_days ", "", "last_90_days", "this_year", "today"}) {
    EXPECT_EQ(refused_field(std::string(bad), none, none, now), "range") << "range=" << bad;
  }
}

TEST(UsageRange, APresetWithDaysIsRefusedNamingRange) {
  const Timestamp now = at("2027-06-15T13:00:00Z");
  const Opt f = std::string("2027-06-01"), t = std::string("2027-06-10"), r = std::string("this_month");
  EXPECT_EQ(refused_field(r, f, t, now), "range");
  EXPECT_EQ(refused_field(r, f, none, now), "range");
  EXPECT_EQ(refused_field(r, none, t, now), "range");
}

TEST(UsageRange, FromWithoutToIsRefusedNamingTo) {
  EXPECT_EQ(refused_field(none, std::string("2027-06-01"), none, at("2027-06-15T13:00:00Z")), "to");
}

TEST(UsageRange, ToWithoutFromIsRefusedNamingFrom) {
  EXPECT_EQ(refused_field(none, none, std::string("2027-06-10"), at("2027-06-15T13:00:00Z")), "from");
}

TEST(UsageRange, AMalformedFromIsRefusedNamingFrom) {
  const Timestamp now = at("2027-06-15T13:00:00Z");
  for (const char* bad : {"2027-6-01", "2027/06/01", "20270601", "2027-06-01T00:00:00Z", "2027-13-01", "2027-00-10",
                          "2027-06-31", "2027-02-29", "2027-06-00", "", "yesterday", " 2027-06-01"}) {
    EXPECT_EQ(refused_field(none, std::string(bad), std::string("2027-06-10"), now), "from") << "from=" << bad;
  }
}

TEST(UsageRange, AMalformedToIsRefusedNamingTo) {
  const Timestamp now = at("2027-06-15T13:00:00Z");
  for (const char* bad : {"2027-6-10", "2027-06-10Z", "2027-04-31", "2027-02-29", "", "2027-06-1x"}) {
    EXPECT_EQ(refused_field(none, std::string("2027-06-01"), std::string(bad), now), "to") << "to=" << bad;
  }
}

TEST(UsageRange, FromAfterToIsRefusedNamingFrom) {
  const Timestamp now = at("2027-06-15T13:00:00Z");
  EXPECT_EQ(refused_field(none, std::string("2027-06-11"), std::string("2027-06-10"), now), "from");
  EXPECT_EQ(refused_field(none, std::string("2028-01-01"), std::string("2027-12-31"), now), "from");
}

// --- plan_range --------------------------------------------------------------------------------------

namespace {

// Every day the plan reads, each exactly once (a day read twice fails here).
std::multiset<Day> days_read(const RangePlan& plan) {
  std::multiset<Day> out;
  for (const Cycle c : plan.months) {
    for (Day d = day_of(cycle_start(c)); d < day_of(cycle_end(c)); ++d) out.insert(d);
  }
  for (const DayRange& s : plan.spans) {
    for (Day d = s.from; d <= s.to; ++d) out.insert(d);
  }
  return out;
}

void expect_covers_exactly(const DayRange& range, const RangePlan& plan) {
  const auto read = days_read(plan);
  std::multiset<Day> want;
  for (Day d = range.from; d <= range.to; ++d) want.insert(d);
  EXPECT_EQ(read, want) << "plan of " << show(range) << " does not read each day exactly once";
}

}  // namespace

TEST(UsagePlan, ARangeInsideOneMonthIsOneSpanAndNoMonth) {
  const DayRange r = days(day(2027, 3, 5), day(2027, 3, 20));
  const auto plan = plan_range(r);
  EXPECT_TRUE(plan.months.empty());
  ASSERT_EQ(plan.spans.size(), 1u);
  EXPECT_EQ(plan.spans[0], r);
}

TEST(UsagePlan, OneDayIsOneSpan) {
  const DayRange r = days(day(2027, 3, 1), day(2027, 3, 1));
  const auto plan = plan_range(r);
  EXPECT_TRUE(plan.months.empty());
  ASSERT_EQ(plan.spans.size(), 1u);
  EXPECT_EQ(plan.spans[0], r);
}

TEST(UsagePlan, AMonthMissingItsLastDayIsReadByDays) {
  const DayRange r = days(day(2027, 4, 1), day(2027, 4, 29));
  const auto plan = plan_range(r);
  EXPECT_TRUE(plan.months.empty());
  ASSERT_EQ(plan.spans.size(), 1u);
  EXPECT_EQ(plan.spans[0], r);
}

TEST(UsagePlan, ExactlyOneFullMonthIsOneMonthAndNoSpan) {
  const auto plan = plan_range(days(day(2027, 4, 1), day(2027, 4, 30)));
  EXPECT_EQ(plan.months, std::vector<Cycle>{month(2027, 4)});
  EXPECT_TRUE(plan.spans.empty());
}

TEST(UsagePlan, FebruaryOfALeapYearIsWholeOnlyWithItsLeapDay) {
  const auto whole = plan_range(days(day(2028, 2, 1), day(2028, 2, 29)));
  EXPECT_EQ(whole.months, std::vector<Cycle>{month(2028, 2)});
  EXPECT_TRUE(whole.spans.empty());
  const auto short_of_it = plan_range(days(day(2028, 2, 1), day(2028, 2, 28)));
  EXPECT_TRUE(short_of_it.months.empty());
  ASSERT_EQ(short_of_it.spans.size(), 1u);
  EXPECT_EQ(short_of_it.spans[0], days(day(2028, 2, 1), day(2028, 2, 28)));
}

TEST(UsagePlan, DecemberToFebruaryReadsJanuaryWholeAndTheEdgesByDay) {
  const DayRange r = days(day(2026, 12, 15), day(2027, 2, 10));
  const auto plan = plan_range(r);
  EXPECT_EQ(plan.months, std::vector<Cycle>{month(2027, 1)});
  ASSERT_EQ(plan.spans.size(), 2u);
  EXPECT_EQ(plan.spans[0], days(day(2026, 12, 15), day(2026, 12, 31)));
  EXPECT_EQ(plan.spans[1], days(day(2027, 2, 1), day(2027, 2, 10)));
  expect_covers_exactly(r, plan);
}

TEST(UsagePlan, WholeDecemberThroughWholeFebruaryIsThreeMonthsInOrder) {
  const DayRange r = days(day(2026, 12, 1), day(2027, 2, 28));
  const auto plan = plan_range(r);
  EXPECT_EQ(plan.months, (std::vector<Cycle>{month(2026, 12), month(2027, 1), month(2027, 2)}));
  EXPECT_TRUE(plan.spans.empty());
}

TEST(UsagePlan, TwoPartialMonthsSideBySideAreOneSpan) {
  const DayRange r = days(day(2026, 12, 20), day(2027, 1, 10));
  const auto plan = plan_range(r);
  EXPECT_TRUE(plan.months.empty());
  ASSERT_EQ(plan.spans.size(), 1u);
  EXPECT_EQ(plan.spans[0], r);
}

TEST(UsagePlan, AWholeMonthThenAPartialOne) {
  const DayRange r = days(day(2027, 1, 1), day(2027, 2, 3));
  const auto plan = plan_range(r);
  EXPECT_EQ(plan.months, std::vector<Cycle>{month(2027, 1)});
  ASSERT_EQ(plan.spans.size(), 1u);
  EXPECT_EQ(plan.spans[0], days(day(2027, 2, 1), day(2027, 2, 3)));
}

TEST(UsagePlan, AWholeLeapYearIsTwelveMonths) {
  const DayRange r = days(day(2028, 1, 1), day(2028, 12, 31));
  ASSERT_EQ(r.days(), 366);
  const auto plan = plan_range(r);
  ASSERT_EQ(plan.months.size(), 12u);
  for (unsigned m = 1; m <= 12; ++m) EXPECT_EQ(plan.months[m - 1], month(2028, m));
  EXPECT_TRUE(plan.spans.empty());
}

TEST(UsagePlan, The366DaysAcrossALeapDayAreElevenMonthsAndTwoEdges) {
  const DayRange r = days(day(2027, 3, 15), day(2028, 3, 14));
  ASSERT_EQ(r.days(), 366);
  const auto plan = plan_range(r);
  ASSERT_EQ(plan.months.size(), 11u);
  EXPECT_EQ(plan.months.front(), month(2027, 4));
  EXPECT_EQ(plan.months.back(), month(2028, 2));
  for (std::size_t i = 1; i < plan.months.size(); ++i) EXPECT_EQ(plan.months[i], plan.months[i - 1] + 1);
  ASSERT_EQ(plan.spans.size(), 2u);
  EXPECT_EQ(plan.spans[0], days(day(2027, 3, 15), day(2027, 3, 31)));
  EXPECT_EQ(plan.spans[1], days(day(2028, 3, 1), day(2028, 3, 14)));
  expect_covers_exactly(r, plan);
}

// Whatever the range, the months are consecutive and whole, the spans are in order and never touch a
// whole month, and everything together reads each day of the range exactly once.
TEST(UsagePlan, AnyRangeIsCoveredExactlyOnce) {
  std::mt19937 rng(20270315);
  std::uniform_int_distribution<Day> start(day(2026, 10, 1), day(2029, 3, 1));
  std::uniform_int_distribution<Day> length(1, 366);
  for (int i = 0; i < 2000; ++i) {
    const Day from = start(rng);
    const DayRange r = days(from, from + length(rng) - 1);
    const auto plan = plan_range(r);
    SCOPED_TRACE(show(r));
    expect_covers_exactly(r, plan);
    for (std::size_t k = 1; k < plan.months.size(); ++k) ASSERT_EQ(plan.months[k], plan.months[k - 1] + 1);
    for (std::size_t k = 1; k < plan.spans.size(); ++k) ASSERT_GT(plan.spans[k].from, plan.spans[k - 1].to + 1);
    // A span never holds a whole month: that would be read by days when a bucket per month exists.
    for (const DayRange& s : plan.spans) {
      const Cycle first = cycle_of(static_cast<Timestamp>(s.from) * 86400);
      const Cycle last = cycle_of(static_cast<Timestamp>(s.to) * 86400);
      for (Cycle c = first; c <= last; ++c) {
        const bool whole = day_of(cycle_start(c)) >= s.from && day_of(cycle_end(c)) - 1 <= s.to;
        ASSERT_FALSE(whole) << "span " << show(s) << " holds the whole month " << c;
      }
    }
    ASSERT_LE(plan.spans.size(), 2u);
  }
}
