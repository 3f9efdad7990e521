#include "domain/time.hpp"

#include <charconv>
#include <cstdio>

namespace canopy::domain {

// Howard Hinnant's civil-date algorithms: exact for the proleptic Gregorian calendar.
Day days_from_civil(CivilDate date) {
  int y = date.year - (date.month <= 2 ? 1 : 0);
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned mp = date.month > 2 ? date.month - 3 : date.month + 9;
  const unsigned doy = (153 * mp + 2) / 5 + date.day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int>(doe) - 719468;
}

CivilDate civil_from_days(Day z) {
  z += 719468;
  const int era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int y = static_cast<int>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return CivilDate{y + (m <= 2 ? 1 : 0), m, d};
}

Cycle cycle_of(Timestamp t) {
  const CivilDate date = civil_from_days(day_of(t));
  return static_cast<Cycle>((date.year - 1970) * 12 + static_cast<int>(date.month) - 1);
}

Timestamp cycle_start(Cycle cycle) {
  const int year = 1970 + (cycle >= 0 ? cycle / 12 : (cycle - 11) / 12);
  const int month0 = cycle - (year - 1970) * 12;
  const Day day = days_from_civil(CivilDate{year, static_cast<unsigned>(month0 + 1), 1});
  return static_cast<Timestamp>(day) * seconds_per_day;
}

std::string format_rfc3339(Timestamp t) {
  const Day day = day_of(t);
  const CivilDate date = civil_from_days(day);
  const auto secs = t - static_cast<Timestamp>(day) * seconds_per_day;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", date.year, date.month, date.day,
                static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60));
  return buf;
}

std::string format_day(Day day) {
  const CivilDate date = civil_from_days(day);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", date.year, date.month, date.day);
  return buf;
}

namespace {

bool parse_uint(std::string_view text, std::size_t pos, std::size_t len, unsigned& out) {
  if (pos + len > text.size()) return false;
  for (std::size_t i = pos; i < pos + len; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
  }
  const auto r = std::from_chars(text.data() + pos, text.data() + pos + len, out);
  return r.ec == std::errc{};
}

bool valid_date(unsigned y, unsigned m, unsigned d) {
  if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1) return false;
  static constexpr unsigned days_in_month[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= days_in_month[m - 1] + (m == 2 && leap ? 1u : 0u);
}

}  // namespace

std::optional<Day> parse_day(std::string_view text) {
  unsigned y = 0, m = 0, d = 0;
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  if (!parse_uint(text, 0, 4, y) || !parse_uint(text, 5, 2, m) || !parse_uint(text, 8, 2, d)) return std::nullopt;
  if (!valid_date(y, m, d)) return std::nullopt;
  return days_from_civil(CivilDate{static_cast<int>(y), m, d});
}

std::optional<Timestamp> parse_rfc3339(std::string_view text) {
  if (text.size() < 20) return std::nullopt;
  const auto day = parse_day(text.substr(0, 10));
  if (!day || (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':') return std::nullopt;
  unsigned hh = 0, mm = 0, ss = 0;
  if (!parse_uint(text, 11, 2, hh) || !parse_uint(text, 14, 2, mm) || !parse_uint(text, 17, 2, ss)) {
    return std::nullopt;
  }
  if (hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  if (ss == 60) ss = 59;  // a leap second is read as the second before it
  std::size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const std::size_t digits_start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos == digits_start) return std::nullopt;
  }
  Timestamp offset = 0;
  if (pos + 1 == text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    offset = 0;
  } else if (pos + 6 == text.size() && (text[pos] == '+' || text[pos] == '-') && text[pos + 3] == ':') {
    unsigned oh = 0, om = 0;
    if (!parse_uint(text, pos + 1, 2, oh) || !parse_uint(text, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = (text[pos] == '+' ? 1 : -1) * static_cast<Timestamp>(oh * 3600 + om * 60);
  } else {
    return std::nullopt;
  }
  return static_cast<Timestamp>(*day) * seconds_per_day + hh * 3600 + mm * 60 + ss - offset;
}

}  // namespace canopy::domain
