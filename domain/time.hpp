// Time, days and billing cycles.
//
// A Timestamp is whole seconds since the Unix epoch, UTC. A billing cycle is a calendar month in UTC,
// numbered as months since January 1970 (so cycle 682 is November 2026); cycles compare as integers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace canopy::domain {

using Timestamp = std::int64_t;
using Cycle = std::int32_t;
using Day = std::int32_t;  // days since 1970-01-01

struct CivilDate {
  int year;
  unsigned month;  // 1..12
  unsigned day;    // 1..31
};

Day days_from_civil(CivilDate date);
CivilDate civil_from_days(Day day);

inline constexpr Timestamp seconds_per_day = 86'400;

inline Day day_of(Timestamp t) {
  return static_cast<Day>((t >= 0 ? t : t - (seconds_per_day - 1)) / seconds_per_day);
}
Cycle cycle_of(Timestamp t);
Timestamp cycle_start(Cycle cycle);
inline Timestamp cycle_end(Cycle cycle) { return cycle_start(cycle + 1); }

// "2026-11-26T04:26:00Z"
std::string format_rfc3339(Timestamp t);
// Accepts RFC 3339 with `Z` or a numeric offset and optional fractional seconds (truncated).
std::optional<Timestamp> parse_rfc3339(std::string_view text);
// "2026-11-26"
std::string format_day(Day day);
std::optional<Day> parse_day(std::string_view text);

}  // namespace canopy::domain
