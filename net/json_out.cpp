#include "net/json_out.hpp"

#include <charconv>
#include <cstdint>
#include <cstring>

#include "domain/ids.hpp"

namespace canopy::net {
namespace {

template <typename Int>
void append_integer(std::string& out, Int v) {
  char buf[24];  // any 64-bit integer with its sign
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

bool must_escape(char c) { return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20; }

// Whether any of the 8 bytes in `w` must be escaped: a control byte, '"' or '\\' (SWAR: a byte's
// high bit is set in `x - 0x01..01 & ~x` only if that byte, or one below it, is zero).
bool word_must_escape(std::uint64_t w) {
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  const auto zero_byte = [](std::uint64_t x) { return (x - ones) & ~x & highs; };
  const std::uint64_t control = (w - ones * 0x20) & ~w & highs;  // a byte below 0x20
  return (control | zero_byte(w ^ (ones * '"')) | zero_byte(w ^ (ones * '\\'))) != 0;
}

// How many leading bytes of `s` go out as they are: most strings (ids, names) are all of them, and
// are scanned eight bytes at a time.
std::size_t plain_prefix(std::string_view s) {
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (word_must_escape(w)) break;
  }
  while (i < s.size() && !must_escape(s[i])) ++i;
  return i;
}

}  // namespace

JsonWriter& JsonWriter::integer(std::int64_t v) {
  comma();
  append_integer(out_, v);
  return *this;
}

JsonWriter& JsonWriter::unsigned_integer(std::uint64_t v) {
  comma();
  append_integer(out_, v);
  return *this;
}

JsonWriter& JsonWriter::id(std::string_view prefix, std::uint64_t value) {
  comma();
  out_.push_back('"');
  domain::append_id(out_, prefix, value);
  out_.push_back('"');
  return *this;
}

JsonWriter& JsonWriter::decimal1(double v) {
  comma();
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, 1);
  out_.append(buf, r.ptr);
  return *this;
}

void JsonWriter::quote(std::string_view s) {
  out_.reserve(out_.size() + s.size() + 2);
  out_.push_back('"');
  std::size_t run = 0;
  for (std::size_t i = plain_prefix(s); i < s.size(); ++i) {
    const char c = s[i];
    if (!must_escape(c)) continue;
    out_.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out_.append("\\\""); break;
      case '\\': out_.append("\\\\"); break;
      case '\n': out_.append("\\n"); break;
      case '\r': out_.append("\\r"); break;
      case '\t': out_.append("\\t"); break;
      default: {
        static constexpr char hex[] = "0123456789abcdef";
        out_.append("\\u00");
        out_.push_back(hex[(c >> 4) & 0xf]);
        out_.push_back(hex[c & 0xf]);
      }
    }
  }
  out_.append(s.data() + run, s.size() - run);
  out_.push_back('"');
}

}  // namespace canopy::net
