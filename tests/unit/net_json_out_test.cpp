// Goal: every body Canopy writes is valid JSON that says exactly what was written. Strings are
// escaped per RFC 8259 (quote, backslash and every control character; nothing else), whether the
// characters to escape come first, last, in a row or not at all; commas and nesting come out right.
// A standard parser (Boost.JSON) reads the result back.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <string>
#include <vector>

#include "net/json_out.hpp"

using canopy::net::JsonWriter;

namespace {

std::string as_json(std::string_view s) {
  JsonWriter w;
  w.string(s);
  return w.take();
}

}  // namespace

TEST(JsonWriter, PlainTextIsWrittenAsIs) {
  EXPECT_EQ(as_json(""), R"("")");
  EXPECT_EQ(as_json("evt_0001"), R"("evt_0001")");
  EXPECT_EQ(as_json("caf\xc3\xa9 / <b>"), "\"caf\xc3\xa9 / <b>\"");  // UTF-8 and '/' need no escape
}

TEST(JsonWriter, QuotesBackslashesAndControlCharactersAreEscapedWherever) {
  EXPECT_EQ(as_json("\""), R"("\"")");
  EXPECT_EQ(as_json("a\"b"), R"("a\"b")");
  EXPECT_EQ(as_json("\\end"), R"("\\end")");
  EXPECT_EQ(as_json("start\\"), R"("start\\")");
  EXPECT_EQ(as_json("\"\"\\\\"), R"("\"\"\\\\")");
  EXPECT_EQ(as_json("line\nnext\r\ttab"), R"("line\nnext\r\ttab")");
  EXPECT_EQ(as_json(std::string("nul\0bell\a", 9)), R"("nul\u0000bell\u0007")");
  EXPECT_EQ(as_json("\x1f"), R"("\u001f")");
  EXPECT_EQ(as_json("\x7f"), "\"\x7f\"");  // DEL is not a control character in JSON
}

TEST(JsonWriter, EveryByteRoundTripsThroughAStandardParser) {
  std::string all;
  for (int c = 1; c < 128; ++c) all.push_back(static_cast<char>(c));
  all += all;  // runs of plain characters between escapes, twice over
  const auto parsed = boost::json::parse(as_json(all));
  ASSERT_TRUE(parsed.is_string());
  EXPECT_EQ(std::string(parsed.as_string()), all);
}

// Plain text is scanned a word at a time: a character to escape is found at any place in a word,
// next to bytes whose high bit is set (UTF-8) and to bytes just above the control range.
TEST(JsonWriter, ACharacterToEscapeIsFoundAtEveryPlaceInALongString) {
  const std::vector<std::pair<char, std::string>> escapes = {
      {'"', R"(\")"}, {'\\', R"(\\)"}, {'\n', R"(\n)"}, {'\0', R"(\u0000)"}, {'\x1f', R"(\u001f)"}};
  const std::string filler = "\xc3\xa9 !~\x7f#$%&'()*+,-./0123456789";  // all plain: 0x20 and up, UTF-8
  for (const auto& [c, escaped] : escapes) {
    for (std::size_t at = 0; at < 24; ++at) {
      std::string s = filler.substr(0, 24);
      s[at] = c;
      std::string expected = "\"";  // appended, not concatenated: GCC 12's -Wrestrict false positive
      expected.append(s, 0, at).append(escaped).append(s, at + 1).append("\"");
      EXPECT_EQ(as_json(s), expected) << "escape at " << at;
    }
  }
}

TEST(JsonWriter, ObjectsAndArraysGetTheirCommas) {
  JsonWriter w;
  w.begin_object().key("results").begin_array();
  for (int i = 0; i < 3; ++i) {
    std::string id = "e";
    id += std::to_string(i);  // not "e" + to_string: GCC 12's -Wrestrict false positive
    w.begin_object().key("id").string(id).key("n").integer(-i).end_object();
  }
  w.end_array().key("ok").boolean(true).key("none").null().end_object();
  EXPECT_EQ(w.str(),
            R"({"results":[{"id":"e0","n":0},{"id":"e1","n":-1},{"id":"e2","n":-2}],"ok":true,"none":null})");
  EXPECT_NO_THROW(boost::json::parse(w.str()));
}

TEST(JsonWriter, ARawValueAroundAStringIsOneValueWithItsStringEscaped) {
  const std::vector<std::string> strings = {"a\"b", ""};
  JsonWriter w;
  w.begin_array();
  for (const auto& s : strings) w.raw_around(R"({"id":)", s, R"(,"ok":true})");
  w.integer(1).end_array();
  EXPECT_EQ(w.str(), R"([{"id":"a\"b","ok":true},{"id":"","ok":true},1])");
  EXPECT_EQ(boost::json::serialize(boost::json::parse(w.str())), w.str());
}
