// Goal: the usage parsers (one event, a batch, a stream message) accept exactly the contract's
// fields and types, and every refusal names the field, and in a batch the index, that caused it, with
// the same words wherever the event came from. These are the hot path's parsers: a refusal must cost
// nothing on the way to it, and a valid body must come out exactly as sent.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/limits.hpp"
#include "domain/time.hpp"
#include "net/json_in.hpp"

using canopy::domain::Error;
using canopy::net::parse_stream_message;
using canopy::net::parse_usage_batch;
using canopy::net::parse_usage_event;
using canopy::net::StreamMessage;
using canopy::net::UsageEventIn;

namespace {

constexpr canopy::domain::Timestamp now = 1'700'000'000'000'000;

std::string detail(const Error& e, const std::string& name) {
  for (const auto& [key, value] : e.details) {
    if (key != name) continue;
    if (const auto* s = std::get_if<std::string>(&value)) return *s;
    if (const auto* n = std::get_if<std::int64_t>(&value)) return std::to_string(*n);
  }
  return "-";
}

// "message | field | index" of a refusal, or "ok".
std::string single(std::string body, UsageEventIn* out = nullptr) {
  UsageEventIn in;
  auto err = parse_usage_event(body, now, in);
  if (out) *out = in;
  if (!err) return "ok";
  return err->message + " | " + detail(*err, "field") + " | " + detail(*err, "index");
}

std::string batch(std::string body, std::vector<UsageEventIn>* out = nullptr) {
  std::vector<UsageEventIn> items;
  auto err = parse_usage_batch(body, now, items);
  if (out) *out = std::move(items);
  if (!err) return "ok";
  return err->message + " | " + detail(*err, "field") + " | " + detail(*err, "index");
}

std::string stream(std::string body, StreamMessage* out = nullptr) {
  StreamMessage m;
  auto err = parse_stream_message(body, now, m);
  if (out) *out = std::move(m);
  if (!err) return "ok";
  return err->message + " | " + detail(*err, "field") + " | " + detail(*err, "index");
}

const std::string good = R"("id":"evt_1","type":"assistants.reply","quantity":3,"cost_micros":1500)";

// A batch whose third event (index 2) is `third`, after two good ones.
std::string third(const std::string& third) {
  const std::string ok = R"({)" + good + R"(,"org_id":"org_a"})";
  return R"({"events":[)" + ok + "," + ok + "," + third + "]}";
}

}  // namespace

TEST(UsageEventParser, AValidEventComesOutAsSent) {
  UsageEventIn in;
  ASSERT_EQ(single("{" + good + "}", &in), "ok");
  EXPECT_EQ(in.event.id, "evt_1");
  EXPECT_EQ(in.event.type, "assistants.reply");
  EXPECT_EQ(in.event.quantity, 3u);
  EXPECT_EQ(in.event.cost_micros, 1500);
  EXPECT_EQ(in.event.occurred_at, now);  // absent: the time it arrived
  EXPECT_EQ(in.org_id, "");
}

TEST(UsageEventParser, FieldsMayComeInAnyOrderWithEscapesAndAnOccurrenceTime) {
  UsageEventIn in;
  ASSERT_EQ(single(R"({"cost_micros":0,"occurred_at":"2023-11-14T22:13:20Z","quantity":0,"type":"assistants.reply","id":"a\"b\u0041"})", &in),
            "ok");
  EXPECT_EQ(in.event.id, "a\"bA");
  EXPECT_EQ(in.event.cost_micros, 0);
  EXPECT_EQ(in.event.quantity, 0u);
  EXPECT_EQ(in.event.occurred_at, *canopy::domain::parse_rfc3339("2023-11-14T22:13:20Z"));
}

TEST(UsageEventParser, EveryRefusalNamesItsField) {
  EXPECT_EQ(single(""), "The request body must be a JSON object | - | -");
  EXPECT_EQ(single("[]"), "The request body must be a JSON object | - | -");
  EXPECT_EQ(single("{" + good + "} x").substr(0, 17), "The request body ");  // not JSON, or more than one value
  // The body is judged as a whole before its values: more than one value wins over a bad id.
  EXPECT_EQ(single(R"({"id":"","type":"assistants.reply","quantity":1,"cost_micros":1} x)").substr(0, 17),
            "The request body ");
  EXPECT_EQ(single("{" + good + R"(,"org_id":"org_a"})"), "Unknown field 'org_id' | org_id | -");
  EXPECT_EQ(single("{" + good + R"(,"colour":"red"})"), "Unknown field 'colour' | colour | -");
  EXPECT_EQ(single("{" + good + R"(,"quantity":4})"), "Field 'quantity' appears twice | quantity | -");
  EXPECT_EQ(single(R"({"type":"assistants.reply","quantity":1,"cost_micros":1})"), "Missing required field 'id' | id | -");
  EXPECT_EQ(single(R"({"id":"x","quantity":1,"cost_micros":1})"), "Missing required field 'type' | type | -");
  EXPECT_EQ(single(R"({"id":"x","type":"assistants.reply","cost_micros":1})"), "Missing required field 'quantity' | quantity | -");
  EXPECT_EQ(single(R"({"id":"x","type":"assistants.reply","quantity":1})"),
            "Missing required field 'cost_micros' | cost_micros | -");
  EXPECT_EQ(single(R"({"id":7,"type":"assistants.reply","quantity":1,"cost_micros":1})"), "id must be a string | id | -");
  EXPECT_EQ(single(R"({"id":null,"type":"assistants.reply","quantity":1,"cost_micros":1})"), "id must be a string | id | -");
  EXPECT_EQ(single(R"({"id":"x","type":"assistants.reply","quantity":"1","cost_micros":1})"),
            "quantity must be an integer | quantity | -");
  EXPECT_EQ(single(R"({"id":"x","type":"assistants.reply","quantity":1.5,"cost_micros":1})"),
            "quantity must be an integer | quantity | -");
  EXPECT_EQ(single(R"({"id":"x","type":"assistants.reply","quantity":1,"cost_micros":9223372036854775808})"),
            "cost_micros must be an integer | cost_micros | -");  // past int64: not one we read
  EXPECT_EQ(single(R"({"id":"x","type":"assistants.reply","quantity":1,"cost_micros":-1})"),
            "cost_micros must be from 0 to " + std::to_string(canopy::limits::amount_micros_max) + " | cost_micros | -");
  EXPECT_EQ(single(R"({"id":"x","type":"assistants.reply","quantity":-1,"cost_micros":1})"),
            "quantity must be from 0 to " + std::to_string(canopy::limits::quantity_max) + " | quantity | -");
  EXPECT_EQ(single(R"({"id":"x","type":"assistants.reply","quantity":1,"cost_micros":1,"occurred_at":"yesterday"})"),
            "occurred_at must be an RFC 3339 time | occurred_at | -");
  EXPECT_EQ(single(R"({"id":"x","type":"assistants.reply","quantity":1,"cost_micros":1,"occurred_at":5})"),
            "occurred_at must be a string | occurred_at | -");
  EXPECT_NE(single(R"({"id":"","type":"assistants.reply","quantity":1,"cost_micros":1})").find(" | id | -"), std::string::npos);
  EXPECT_NE(single(R"({"id":"x","type":"","quantity":1,"cost_micros":1})").find(" | type | -"), std::string::npos);
  EXPECT_EQ(single(R"({"id":"x")").substr(0, 36), "The request body is not valid JSON: ");
}

TEST(UsageBatchParser, EventsComeOutInOrderWithTheirOrgs) {
  std::vector<UsageEventIn> items;
  ASSERT_EQ(batch(R"({"events":[{"org_id":"org_a",)" + good + R"(},{"id":"evt_2","org_id":"org_b","type":"assistants.reply","quantity":1,"cost_micros":2}]})",
                  &items),
            "ok");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].org_id, "org_a");
  EXPECT_EQ(items[0].event.id, "evt_1");
  EXPECT_EQ(items[1].org_id, "org_b");
  EXPECT_EQ(items[1].event.id, "evt_2");
  EXPECT_EQ(items[1].event.cost_micros, 2);
  EXPECT_EQ(batch(R"({"events":[]})", &items), "ok");
  EXPECT_TRUE(items.empty());
}

TEST(UsageBatchParser, ARefusalNamesTheEventByIndexAndItsField) {
  EXPECT_EQ(batch(third("{" + good + "}")), "Missing required field 'events[2].org_id' | events[2].org_id | 2");
  EXPECT_EQ(batch(third("{" + good + R"(,"org_id":"o","colour":1})")),
            "Unknown field 'events[2].colour' | events[2].colour | 2");
  EXPECT_EQ(batch(third("{" + good + R"(,"org_id":"o","id":"y"})")), "Field 'events[2].id' appears twice | events[2].id | 2");
  EXPECT_EQ(batch(third(R"({"id":"x","org_id":"o","type":"assistants.reply","quantity":"1","cost_micros":1})")),
            "events[2].quantity must be an integer | events[2].quantity | 2");
  EXPECT_EQ(batch(third(R"({"id":"x","org_id":"o","type":"assistants.reply","quantity":1,"cost_micros":-1})")),
            "events[2].cost_micros must be from 0 to " + std::to_string(canopy::limits::amount_micros_max) +
                " | events[2].cost_micros | 2");
  EXPECT_EQ(batch(third(R"({"id":"x","org_id":7,"type":"assistants.reply","quantity":1,"cost_micros":1})")),
            "events[2].org_id must be a string | events[2].org_id | 2");
  EXPECT_EQ(batch(third(R"({"org_id":"o","type":"assistants.reply","quantity":1,"cost_micros":1})")),
            "Missing required field 'events[2].id' | events[2].id | 2");
  EXPECT_EQ(batch(third("7")), "events[2] must be an object | - | 2");
}

TEST(UsageBatchParser, TheEnvelopeIsStrictToo) {
  EXPECT_EQ(batch(""), "The request body must be a JSON object | - | -");
  EXPECT_EQ(batch("{}"), "Missing required field 'events' | events | -");
  EXPECT_EQ(batch(R"({"events":{}})"), "events must be an array | events | -");
  EXPECT_EQ(batch(R"({"events":[],"extra":1})"), "Unknown field 'extra' | extra | -");
  EXPECT_EQ(batch(R"({"events":[],"events":[]})"), "Field 'events' appears twice | events | -");
  EXPECT_EQ(batch(R"({"events":[]} [])").substr(0, 17), "The request body ");
}

TEST(UsageBatchParser, AtMostTheBatchLimitOfEvents) {
  const std::string one = "{" + good + R"(,"org_id":"o"})";
  std::string body = R"({"events":[)";
  for (std::size_t i = 0; i <= canopy::limits::usage_batch_events_max; ++i) body += (i ? "," : "") + one;
  body += "]}";
  EXPECT_EQ(batch(body), "A batch holds at most " + std::to_string(canopy::limits::usage_batch_events_max) +
                             " events | events | -");
}

TEST(StreamMessageParser, AUsageMessageCarriesOneBatchItem) {
  StreamMessage m;
  ASSERT_EQ(stream(R"({"op":"usage","event":{"org_id":"org_a",)" + good + "}}", &m), "ok");
  EXPECT_EQ(m.op, StreamMessage::Op::usage);
  EXPECT_EQ(m.event.org_id, "org_a");
  EXPECT_EQ(m.event.event.id, "evt_1");
  EXPECT_EQ(stream(R"({"op":"usage","event":{)" + good + "}}"),
            "Missing required field 'event.org_id' | event.org_id | -");
  EXPECT_EQ(stream(R"({"op":"usage","event":{"org_id":"o","quantity":"1","id":"x","type":"assistants.reply","cost_micros":1}})"),
            "event.quantity must be an integer | event.quantity | -");
  EXPECT_EQ(stream(R"({"op":"usage","event":{"org_id":"o","x":1}})"), "Unknown field 'event.x' | event.x | -");
  ASSERT_EQ(stream(R"({"op":"subscribe","org_id":"org_a"})", &m), "ok");
  EXPECT_EQ(m.op, StreamMessage::Op::subscribe);
  EXPECT_EQ(m.org_id, "org_a");
}
