// SmallString (domain/small_string.hpp): an event's id and type, kept in place up to its inline
// size and on the heap past it, reading, comparing, copying and moving as the bytes it holds.
#include "domain/small_string.hpp"

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "domain/records.hpp"

namespace canopy::domain {
namespace {

using Text = SmallString<8>;

TEST(SmallString, KeepsUpToItsInlineSizeInPlaceAndLongerOnTheHeap) {
  const Text empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.view(), "");
  const Text eight("abcdefgh");
  EXPECT_FALSE(eight.on_heap());
  EXPECT_EQ(eight.view(), "abcdefgh");
  const Text nine("abcdefghi");
  EXPECT_TRUE(nine.on_heap());
  EXPECT_EQ(nine.size(), 9u);
  EXPECT_EQ(nine.view(), "abcdefghi");
  const std::string with_nul("a\0b", 3);
  EXPECT_EQ(Text(with_nul).view(), std::string_view(with_nul)) << "bytes, not a C string";
}

TEST(SmallString, TheEventTextHoldsAUuidOrATypicalTypeInPlace) {
  EXPECT_FALSE(EventText("3f2504e0-4f89-41d3-9a0c-0305e82c3301").on_heap());
  EXPECT_FALSE(EventText("assistants.reply").on_heap());
  EXPECT_TRUE(EventText(std::string(37, 'x')).on_heap());
}

TEST(SmallString, CopiesAndMovesKeepTheBytesAndLeaveTheSourceValid) {
  for (const std::string bytes : {"short", "longer than eight"}) {
    Text a(bytes);
    Text copy(a);
    EXPECT_EQ(copy, a);
    Text moved(std::move(a));
    EXPECT_EQ(moved.view(), bytes);
    EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty, and reusable
    a = "reused";
    EXPECT_EQ(a.view(), "reused");
    Text assigned;
    assigned = copy;
    EXPECT_EQ(assigned.view(), bytes);
    Text move_assigned("something else entirely");
    move_assigned = std::move(copy);
    EXPECT_EQ(move_assigned.view(), bytes);
  }
}

TEST(SmallString, AssigningAPartOfItselfIsSafeInPlaceAndOnTheHeap) {
  Text inline_text("abcdef");
  inline_text.assign(inline_text.view().substr(2));
  EXPECT_EQ(inline_text.view(), "cdef");
  Text heap_text("0123456789abcdef");
  heap_text.assign(heap_text.view().substr(4));  // still longer than 8: a new heap buffer
  EXPECT_EQ(heap_text.view(), "456789abcdef");
  heap_text.assign(heap_text.view().substr(4));  // 8 bytes: back in place
  EXPECT_FALSE(heap_text.on_heap());
  EXPECT_EQ(heap_text.view(), "89abcdef");
  Text& self = heap_text;
  heap_text = self;
  EXPECT_EQ(heap_text.view(), "89abcdef");
}

// std::string clears on `s = {}`; here that would have meant a null `const char*`: it does not compile,
// and neither does a null pointer. clear() clears.
template <class T>
concept AssignableFromBraces = requires(T text) { text = {}; };
template <class T>
concept AssignableFromNull = requires(T text) { text = nullptr; };
static_assert(!AssignableFromBraces<EventText>);
static_assert(!AssignableFromNull<EventText>);
static_assert(AssignableFromBraces<std::string>, "the check itself: std::string takes it");
static_assert(!std::is_constructible_v<EventText, std::nullptr_t>);

TEST(SmallString, ClearEmptiesItInPlaceOrOnTheHeap) {
  Text short_text("abc"), long_text("abcdefghijk");
  short_text.clear();
  long_text.clear();
  EXPECT_TRUE(short_text.empty());
  EXPECT_TRUE(long_text.empty());
  EXPECT_FALSE(long_text.on_heap());
}

TEST(SmallString, ComparesAndPrintsAsItsBytes) {
  const Text a("abc"), b("abd"), long_a("abcdefghij");
  EXPECT_EQ(a, "abc");
  EXPECT_EQ(a, std::string("abc"));
  EXPECT_EQ(a, std::string_view("abc"));
  EXPECT_NE(a, b);
  EXPECT_LT(a, b);
  EXPECT_LT(a, long_a);
  std::map<Text, int> ordered{{b, 2}, {long_a, 3}, {a, 1}};
  std::vector<int> order;
  for (const auto& [key, value] : ordered) order.push_back(value);
  EXPECT_EQ(order, (std::vector<int>{1, 3, 2}));
  std::ostringstream out;
  out << long_a;
  EXPECT_EQ(out.str(), "abcdefghij");
}

}  // namespace
}  // namespace canopy::domain
