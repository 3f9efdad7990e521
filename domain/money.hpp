// Money: integer micro-dollars (1 USD = 1,000,000). Never floats.
//
// Every sum on a money path goes through checked_add/checked_sub: an overflow is a refused operation,
// never a wrapped balance.
#pragma once

#include <cstdint>
#include <optional>

namespace canopy::domain {

using Micros = std::int64_t;

inline std::optional<Micros> checked_add(Micros a, Micros b) {
  Micros out = 0;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

inline std::optional<Micros> checked_sub(Micros a, Micros b) {
  Micros out = 0;
  if (__builtin_sub_overflow(a, b, &out)) return std::nullopt;
  return out;
}

}  // namespace canopy::domain
