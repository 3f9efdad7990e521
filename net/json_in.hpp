// Reading request bodies with simdjson's on-demand parser, strictly: one object, only known fields,
// each of the declared type, none twice, required ones present. Every failure is an Error naming the
// field, for a 400; nothing here can throw past its caller.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "domain/errors.hpp"
#include "domain/records.hpp"

namespace canopy::net {

enum class JsonType : std::uint8_t {
  string, integer, boolean, nullable_integer, nullable_string,
  integer_array,  // [1, 2, 3] into FieldValue::integers (at most json_array_items_max)
  string_array,   // ["a", "b"] into FieldValue::strings (at most json_array_items_max)
};
inline constexpr std::size_t json_array_items_max = 64;

struct FieldSpec {
  std::string_view name;
  JsonType type;
  bool required;
};

struct FieldValue {
  bool present = false;
  bool is_null = false;
  std::string text;
  std::int64_t integer = 0;
  bool boolean = false;
  std::vector<std::int64_t> integers;
  std::vector<std::string> strings;
};

// REQUIRES: body.capacity() >= body.size() + simdjson::SIMDJSON_PADDING (see pad_body).
std::optional<domain::Error> parse_object(std::string& body, std::span<const FieldSpec> specs,
                                          std::span<FieldValue> out);

// Makes room for simdjson's padding without copying later.
void pad_body(std::string& body);
// The capacity a body of `bytes` is parsed in place with (simdjson reads up to its padding past the
// end). Reserved before the body is read (http_session.cpp), it spares pad_body() a second allocation
// of the whole body and its copy: a fresh megabyte to fault in per full batch.
std::size_t padded_capacity(std::size_t bytes);

// A usage event as the contract describes it; `with_org` for batch items (org_id required).
struct UsageEventIn {
  domain::ChargeEvent event;
  // As the client spelled it (a batch or stream item): a view into this thread's parser, valid until
  // it reads its next document; whoever keeps it longer copies it.
  std::string_view org_id;
};

std::optional<domain::Error> parse_usage_event(std::string& body, domain::Timestamp now, UsageEventIn& out);
// {"events": [...]}: at most limits::usage_batch_events_max items; an error names the index.
std::optional<domain::Error> parse_usage_batch(std::string& body, domain::Timestamp now, std::vector<UsageEventIn>& out);

// A client message on the WebSocket stream: {"op":"subscribe"|"unsubscribe","org_id":…} or
// {"op":"usage","event":{…a batch item…}}.
struct StreamMessage {
  enum class Op : std::uint8_t { subscribe, unsubscribe, usage } op = Op::subscribe;
  std::string org_id;  // subscribe, unsubscribe
  UsageEventIn event;  // usage
};

std::optional<domain::Error> parse_stream_message(std::string& text, domain::Timestamp now, StreamMessage& out);

}  // namespace canopy::net
