#include "net/json_in.hpp"

#include <simdjson.h>

#include "config/limits.hpp"
#include "domain/validation.hpp"

namespace canopy::net {

using domain::Error;
using domain::invalid;
using domain::invalid_field;
namespace od = simdjson::ondemand;

namespace {

// One parser per thread: parsers are reusable and keep their buffers.
od::parser& thread_parser() {
  thread_local od::parser parser;
  return parser;
}

Error malformed(simdjson::error_code code) {
  return invalid(std::string("The request body is not valid JSON: ") + simdjson::error_message(code));
}

std::string_view type_name(JsonType t) {
  switch (t) {
    case JsonType::string: return "a string";
    case JsonType::integer: return "an integer";
    case JsonType::boolean: return "true or false";
    case JsonType::nullable_integer: return "an integer or null";
    case JsonType::nullable_string: return "a string or null";
    case JsonType::integer_array: return "an array of integers";
    case JsonType::string_array: return "an array of strings";
  }
  return "a value";
}

// A field's name in error messages ("events[3].cost_micros"): built only when an error needs it, so a
// batch of 10,000 valid events builds none.
struct FieldName {
  std::string_view where;  // "", "event." or "events[3]."
  std::string_view key;
  std::string str() const { return std::string(where) + std::string(key); }
};

Error wrong_type(const FieldName& field, JsonType t) {
  return invalid_field(field.str(), field.str() + " must be " + std::string(type_name(t)));
}

// Reads one value of the declared type into `out`.
std::optional<Error> read_value(od::value value, const FieldName& field, JsonType type, FieldValue& out) {
  od::json_type actual;
  if (auto err = value.type().get(actual)) return malformed(err);
  const bool nullable = type == JsonType::nullable_integer || type == JsonType::nullable_string;
  if (actual == od::json_type::null) {
    if (!nullable) return wrong_type(field, type);
    bool is_null = false;
    if (auto err = value.is_null().get(is_null); err || !is_null) return malformed(err ? err : simdjson::INCORRECT_TYPE);
    out.is_null = true;
    return std::nullopt;
  }
  switch (type) {
    case JsonType::string:
    case JsonType::nullable_string: {
      std::string_view s;
      if (actual != od::json_type::string || value.get_string().get(s)) return wrong_type(field, type);
      out.text.assign(s);
      return std::nullopt;
    }
    case JsonType::integer:
    case JsonType::nullable_integer: {
      if (actual != od::json_type::number) return wrong_type(field, type);
      std::int64_t n = 0;
      if (auto err = value.get_int64().get(n)) {
        if (err == simdjson::NUMBER_OUT_OF_RANGE) {
          return invalid_field(field.str(), field.str() + " is out of range");
        }
        return wrong_type(field, type);
      }
      out.integer = n;
      return std::nullopt;
    }
    case JsonType::boolean: {
      if (actual != od::json_type::boolean || value.get_bool().get(out.boolean)) return wrong_type(field, type);
      return std::nullopt;
    }
    case JsonType::integer_array:
    case JsonType::string_array: {
      od::array array;
      if (actual != od::json_type::array || value.get_array().get(array)) return wrong_type(field, type);
      for (auto item : array) {
        od::value element;
        if (auto err = item.get(element)) return malformed(err);
        if (out.integers.size() + out.strings.size() >= json_array_items_max) {
          return invalid_field(field.str(), field.str() + " holds at most " +
                                                       std::to_string(json_array_items_max) + " items");
        }
        FieldValue one;
        const JsonType item_type = type == JsonType::integer_array ? JsonType::integer : JsonType::string;
        if (auto err = read_value(element, field, item_type, one)) return wrong_type(field, type);
        if (type == JsonType::integer_array) {
          out.integers.push_back(one.integer);
        } else {
          out.strings.push_back(std::move(one.text));
        }
      }
      return std::nullopt;
    }
  }
  return wrong_type(field, type);
}

// Iterates one object's fields against `specs`.
std::optional<Error> read_fields(od::object object, std::span<const FieldSpec> specs, std::span<FieldValue> out,
                                 std::string_view where) {
  for (auto field : object) {
    std::string_view key;
    if (auto err = field.unescaped_key().get(key)) return malformed(err);
    std::size_t index = specs.size();
    for (std::size_t i = 0; i < specs.size(); ++i) {
      if (specs[i].name == key) index = i;
    }
    const FieldName name{where, key};
    if (index == specs.size()) {
      return invalid_field(name.str(), "Unknown field '" + name.str() + "'");
    }
    if (out[index].present) return invalid_field(name.str(), "Field '" + name.str() + "' appears twice");
    od::value value;
    if (auto err = field.value().get(value)) return malformed(err);
    out[index].present = true;
    if (auto err = read_value(value, name, specs[index].type, out[index])) return err;
  }
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].required && !out[i].present) {
      const std::string name = std::string(where) + std::string(specs[i].name);
      return invalid_field(name, "Missing required field '" + name + "'");
    }
  }
  return std::nullopt;
}

// True when nothing but white space follows the root value.
bool at_end(od::document& doc) { return doc.current_location().error() == simdjson::OUT_OF_BOUNDS; }

simdjson::simdjson_result<od::document> iterate(std::string& body) {
  pad_body(body);
  return thread_parser().iterate(body.data(), body.size(), body.capacity());
}

std::optional<Error> read_root_object(od::document& doc, od::object& object) {
  od::json_type type;
  if (auto err = doc.type().get(type)) return malformed(err);
  if (type != od::json_type::object) return invalid("The request body must be a JSON object");
  if (auto err = doc.get_object().get(object)) return malformed(err);
  return std::nullopt;
}

constexpr FieldSpec usage_specs[] = {
    {"id", JsonType::string, true},          {"type", JsonType::string, true},
    {"quantity", JsonType::integer, true},   {"cost_micros", JsonType::integer, true},
    {"occurred_at", JsonType::string, false}, {"org_id", JsonType::string, false},
};

std::optional<Error> to_event(std::span<FieldValue> v, domain::Timestamp now, std::string_view where, UsageEventIn& out) {
  auto field = [&](std::string_view name) { return std::string(where) + std::string(name); };
  if (auto why = domain::check_event_id(v[0].text)) return invalid_field(field("id"), field("id") + " " + *why);
  if (auto why = domain::check_event_type(v[1].text)) return invalid_field(field("type"), field("type") + " " + *why);
  if (v[2].integer < 0 || static_cast<std::uint64_t>(v[2].integer) > limits::quantity_max) {
    return invalid_field(field("quantity"), field("quantity") + " must be from 0 to " + std::to_string(limits::quantity_max));
  }
  if (v[3].integer < 0 || v[3].integer > limits::amount_micros_max) {
    return invalid_field(field("cost_micros"),
                         field("cost_micros") + " must be from 0 to " + std::to_string(limits::amount_micros_max));
  }
  out.event.id = std::move(v[0].text);
  out.event.type = std::move(v[1].text);
  out.event.quantity = static_cast<std::uint64_t>(v[2].integer);
  out.event.cost_micros = v[3].integer;
  out.event.occurred_at = now;
  if (v[4].present) {
    const auto t = domain::parse_rfc3339(v[4].text);
    if (!t) return invalid_field(field("occurred_at"), field("occurred_at") + " must be an RFC 3339 time");
    out.event.occurred_at = *t;
  }
  out.org_id = std::move(v[5].text);
  return std::nullopt;
}

}  // namespace

void pad_body(std::string& body) {
  if (body.capacity() < body.size() + simdjson::SIMDJSON_PADDING) body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
}

std::optional<Error> parse_object(std::string& body, std::span<const FieldSpec> specs, std::span<FieldValue> out) {
  if (body.empty()) return invalid("The request body must be a JSON object");
  auto doc_result = iterate(body);
  od::document doc;
  if (auto err = std::move(doc_result).get(doc)) return malformed(err);
  od::object object;
  if (auto err = read_root_object(doc, object)) return err;
  if (auto err = read_fields(object, specs, out, "")) return err;
  if (!at_end(doc)) return invalid("The request body has content after the JSON object");
  return std::nullopt;
}

std::optional<Error> parse_usage_event(std::string& body, domain::Timestamp now, UsageEventIn& out) {
  FieldValue v[std::size(usage_specs)];
  // A single event names its org in the path: org_id is not one of its fields.
  if (auto err = parse_object(body, std::span(usage_specs, 5), std::span(v, 5))) return err;
  return to_event(v, now, "", out);
}

std::optional<Error> parse_usage_batch(std::string& body, domain::Timestamp now, std::vector<UsageEventIn>& out) {
  if (body.empty()) return invalid("The request body must be a JSON object");
  auto doc_result = iterate(body);
  od::document doc;
  if (auto err = std::move(doc_result).get(doc)) return malformed(err);
  od::object root;
  if (auto err = read_root_object(doc, root)) return err;
  bool seen_events = false;
  for (auto field : root) {
    std::string_view key;
    if (auto err = field.unescaped_key().get(key)) return malformed(err);
    if (key != "events") return invalid_field(std::string(key), "Unknown field '" + std::string(key) + "'");
    if (seen_events) return invalid_field("events", "Field 'events' appears twice");
    seen_events = true;
    od::array events;
    if (field.value().get_array().get(events)) return invalid_field("events", "events must be an array");
    std::size_t index = 0;
    for (auto item : events) {
      if (index >= limits::usage_batch_events_max) {
        return invalid_field("events", "A batch holds at most " + std::to_string(limits::usage_batch_events_max) + " events");
      }
      if (item.error()) return malformed(item.error());
      const std::string where = "events[" + std::to_string(index) + "].";
      od::object object;
      if (item.get_object().get(object)) {
        return Error{domain::Errc::invalid_request, where.substr(0, where.size() - 1) + " must be an object",
                     {{"index", static_cast<std::int64_t>(index)}}};
      }
      FieldValue v[std::size(usage_specs)];
      UsageEventIn in;
      auto err = read_fields(object, usage_specs, v, where);
      if (!err && !v[5].present) err = invalid_field(where + "org_id", "Missing required field '" + where + "org_id'");
      if (!err) err = to_event(v, now, where, in);
      if (err) {
        err->details.emplace_back("index", static_cast<std::int64_t>(index));
        return err;
      }
      out.push_back(std::move(in));
      ++index;
    }
  }
  if (!seen_events) return invalid_field("events", "Missing required field 'events'");
  if (!at_end(doc)) return invalid("The request body has content after the JSON object");
  return std::nullopt;
}

std::optional<Error> parse_stream_message(std::string& text, domain::Timestamp now, StreamMessage& out) {
  if (text.empty()) return invalid("The message must be a JSON object");
  auto doc_result = iterate(text);
  od::document doc;
  if (auto err = std::move(doc_result).get(doc)) return malformed(err);
  od::object root;
  if (auto err = read_root_object(doc, root)) return err;
  std::optional<std::string> op;
  std::optional<std::string> org_id;
  bool has_event = false;
  for (auto field : root) {
    std::string_view key;
    if (auto err = field.unescaped_key().get(key)) return malformed(err);
    od::value value;
    if (auto err = field.value().get(value)) return malformed(err);
    if (key == "op" || key == "org_id") {
      auto& slot = key == "op" ? op : org_id;
      if (slot) return invalid_field(std::string(key), "Field '" + std::string(key) + "' appears twice");
      FieldValue v;
      if (auto err = read_value(value, FieldName{"", key}, JsonType::string, v)) return err;
      slot = std::move(v.text);
    } else if (key == "event") {
      if (has_event) return invalid_field("event", "Field 'event' appears twice");
      has_event = true;
      od::object object;
      if (value.get_object().get(object)) return invalid_field("event", "event must be an object");
      FieldValue v[std::size(usage_specs)];
      if (auto err = read_fields(object, usage_specs, v, "event.")) return err;
      if (!v[5].present) return invalid_field("event.org_id", "Missing required field 'event.org_id'");
      if (auto err = to_event(v, now, "event.", out.event)) return err;
    } else {
      return invalid_field(std::string(key), "Unknown field '" + std::string(key) + "'");
    }
  }
  if (!at_end(doc)) return invalid("The message has content after the JSON object");
  if (!op) return invalid_field("op", "Missing required field 'op'");
  if (*op == "subscribe" || *op == "unsubscribe") {
    out.op = *op == "subscribe" ? StreamMessage::Op::subscribe : StreamMessage::Op::unsubscribe;
    if (has_event) return invalid_field("event", "event goes only with op usage");
    if (!org_id) return invalid_field("org_id", "Missing required field 'org_id'");
    out.org_id = std::move(*org_id);
    return std::nullopt;
  }
  if (*op == "usage") {
    out.op = StreamMessage::Op::usage;
    if (org_id) return invalid_field("org_id", "A usage message names its org in event.org_id");
    if (!has_event) return invalid_field("event", "Missing required field 'event'");
    return std::nullopt;
  }
  return invalid_field("op", "op must be subscribe, unsubscribe or usage");
}

}  // namespace canopy::net
