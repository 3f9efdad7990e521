// A string that keeps up to `Inline` bytes in place and only longer ones on the heap.
//
// For the two strings of every usage event (its id and its type). As std::string, both were a heap
// allocation per event as soon as they passed its 15-byte small-string buffer ("assistants.reply" is
// 16 bytes, a UUID 36): allocated on the I/O thread that parses a batch, freed on whichever thread
// drops the batch last, so each also paid the allocator's cross-thread return. A batch of 1,000 such
// events cost ~10% more server CPU per event than one with an 11-byte type (docs/benchmarks.md).
//
// Immutable in practice (assign() replaces the whole value); compares, converts and prints as the
// bytes it holds.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <string_view>

namespace canopy::domain {

template <std::size_t Inline>
class SmallString {
  static_assert(Inline > 0 && Inline < UINT32_MAX);

 public:
  SmallString() noexcept {}  // NOLINT: buf_ is read only up to size_
  SmallString(std::string_view s) { assign(s); }  // NOLINT: implicit, as std::string's
  SmallString(const std::string& s) : SmallString(std::string_view(s)) {}
  SmallString(const char* s) : SmallString(std::string_view(s)) {}
  SmallString(std::nullptr_t) = delete;
  SmallString(const SmallString& other) { assign(other.view()); }
  SmallString(SmallString&& other) noexcept { take(other); }
  SmallString& operator=(const SmallString& other) {
    if (this != &other) assign(other.view());
    return *this;
  }
  SmallString& operator=(SmallString&& other) noexcept {
    if (this != &other) {
      release();
      take(other);
    }
    return *this;
  }
  SmallString& operator=(std::string_view s) {
    assign(s);
    return *this;
  }
  SmallString& operator=(const std::string& s) { return *this = std::string_view(s); }
  // A literal. (Not `const char*`: `text = {}` would pick it, a null pointer, where std::string clears;
  // here it does not compile. clear() clears.)
  template <std::size_t N>
  SmallString& operator=(const char (&s)[N]) {
    return *this = std::string_view(s);
  }
  SmallString& operator=(std::nullptr_t) = delete;
  void clear() noexcept {
    release();
    size_ = 0;
  }
  ~SmallString() { release(); }

  void assign(std::string_view s) {
    if (s.size() <= Inline) {
      // memmove: `s` may be this very buffer, or a part of it.
      if (!s.empty()) std::memmove(buf_, s.data(), s.size());
      release();
    } else {
      char* bytes = new char[s.size()];  // before release(): `s` may be the old heap buffer
      std::memcpy(bytes, s.data(), s.size());
      release();
      heap_ = bytes;
    }
    size_ = static_cast<std::uint32_t>(s.size());
  }

  const char* data() const noexcept { return heap_ ? heap_ : buf_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  const char* begin() const noexcept { return data(); }
  const char* end() const noexcept { return data() + size_; }
  std::string_view view() const noexcept { return {data(), size_}; }
  operator std::string_view() const noexcept { return view(); }  // NOLINT: implicit, as std::string's
  std::string str() const { return std::string(view()); }
  std::size_t copy(char* dest, std::size_t count, std::size_t pos = 0) const { return view().copy(dest, count, pos); }
  // Whether the bytes live on the heap (longer than Inline).
  bool on_heap() const noexcept { return heap_ != nullptr; }

  friend bool operator==(const SmallString& a, const SmallString& b) noexcept { return a.view() == b.view(); }
  friend bool operator==(const SmallString& a, std::string_view b) noexcept { return a.view() == b; }
  friend bool operator==(const SmallString& a, const std::string& b) noexcept { return a.view() == b; }
  template <std::size_t N>
  friend bool operator==(const SmallString& a, const char (&b)[N]) noexcept {
    return a.view() == std::string_view(b);
  }
  friend auto operator<=>(const SmallString& a, const SmallString& b) noexcept { return a.view() <=> b.view(); }
  friend std::ostream& operator<<(std::ostream& out, const SmallString& s) { return out << s.view(); }

 private:
  void release() noexcept {
    delete[] heap_;
    heap_ = nullptr;
  }
  // REQUIRES: this holds no heap buffer.
  void take(SmallString& other) noexcept {
    size_ = other.size_;
    if (other.heap_) {
      heap_ = other.heap_;
      other.heap_ = nullptr;
    } else if (size_ > 0) {
      std::memcpy(buf_, other.buf_, size_);
    }
    other.size_ = 0;
  }

  char* heap_ = nullptr;  // null: the bytes are in buf_
  std::uint32_t size_ = 0;
  char buf_[Inline];
};

}  // namespace canopy::domain
