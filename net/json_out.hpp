// A small JSON writer: appends to a std::string, commas and escaping handled, no DOM.
//
// Faster than building a boost::json::value for the small, flat bodies Canopy answers with, and the
// hot path (usage results) writes straight into a reused buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace canopy::net {

class JsonWriter {
 public:
  JsonWriter() { out_.reserve(256); }
  // For a body whose size is known roughly in advance (a batch's results).
  void reserve(std::size_t bytes) { out_.reserve(bytes); }

  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }

  JsonWriter& key(std::string_view k) {
    comma();
    quote(k);
    out_.push_back(':');
    after_key_ = true;
    return *this;
  }
  JsonWriter& string(std::string_view v) {
    comma();
    quote(v);
    return *this;
  }
  JsonWriter& integer(std::int64_t v);
  JsonWriter& unsigned_integer(std::uint64_t v);
  // One decimal place, as percentages are shown (e.g. 33.3).
  JsonWriter& decimal1(double v);
  JsonWriter& boolean(bool v) {
    comma();
    out_.append(v ? "true" : "false");
    return *this;
  }
  JsonWriter& null() {
    comma();
    out_.append("null");
    return *this;
  }
  // An id (`<prefix><13 base32 chars>`, domain/ids.hpp) as a string: nothing to escape, no temporary.
  JsonWriter& id(std::string_view prefix, std::uint64_t value);
  JsonWriter& optional_integer(const std::optional<std::int64_t>& v) { return v ? integer(*v) : null(); }
  JsonWriter& optional_string(const std::optional<std::string>& v) { return v ? string(*v) : null(); }
  // Inserts already-encoded JSON as one value.
  JsonWriter& raw(std::string_view json) {
    comma();
    out_.append(json);
    return *this;
  }
  // Inserts one value made of already-encoded JSON `before`, the string `s` (quoted and escaped here)
  // and already-encoded `after`: a batch result object in three appends, its fixed parts encoded once
  // per batch rather than key by key for each of 10,000 events.
  JsonWriter& raw_around(std::string_view before, std::string_view s, std::string_view after) {
    comma();
    out_.append(before);
    quote(s);
    out_.append(after);
    return *this;
  }

  std::string take() { return std::move(out_); }
  // Starts over, keeping the buffer (a writer reused for many small pieces allocates once).
  void clear() {
    out_.clear();
    first_ = true;
    after_key_ = false;
  }
  const std::string& str() const { return out_; }

 private:
  JsonWriter& open(char c) {
    comma();
    out_.push_back(c);
    first_ = true;
    return *this;
  }
  JsonWriter& close(char c) {
    out_.push_back(c);
    first_ = false;
    return *this;
  }
  void comma() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_) out_.push_back(',');
    first_ = false;
  }
  // Appends runs of characters that need no escaping in one go (ids and names usually are one run).
  void quote(std::string_view s);

  std::string out_;
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace canopy::net
