// Goal: cycles are calendar months in UTC and timestamps round-trip through RFC 3339.
#include <gtest/gtest.h>

#include "domain/time.hpp"

using namespace canopy::domain;

TEST(Time, CycleOfNovember2026IsMonthsSinceEpoch) {
  const auto t = parse_rfc3339("2026-11-26T04:26:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(cycle_of(*t), (2026 - 1970) * 12 + 10);
  EXPECT_EQ(format_rfc3339(cycle_start(cycle_of(*t))), "2026-11-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(cycle_end(cycle_of(*t))), "2026-12-01T00:00:00Z");
}

TEST(Time, LastSecondOfMonthBelongsToIt) {
  const auto last = *parse_rfc3339("2026-12-31T23:59:59Z");
  EXPECT_EQ(cycle_of(last) + 1, cycle_of(last + 1));
  EXPECT_EQ(format_rfc3339(cycle_start(cycle_of(last + 1))), "2027-01-01T00:00:00Z");
}

TEST(Time, Rfc3339AcceptsOffsetsAndFractions) {
  EXPECT_EQ(parse_rfc3339("2026-11-26T05:26:00+01:00"), parse_rfc3339("2026-11-26T04:26:00Z"));
  EXPECT_EQ(parse_rfc3339("2026-11-26T04:26:00.999Z"), parse_rfc3339("2026-11-26T04:26:00Z"));
}

TEST(Time, Rfc3339RejectsMalformed) {
  for (const char* bad : {"", "2026-11-26", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-26T24:00:00Z",
                          "2026-11-26T04:26:00", "2026-11-26 04:26:00Z", "x026-11-26T04:26:00Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
}

TEST(Time, DaysRoundTrip) {
  EXPECT_EQ(format_day(*parse_day("2024-02-29")), "2024-02-29");
  EXPECT_FALSE(parse_day("2023-02-29"));
}
