#include "net/json_in.hpp"

#include <simdjson.h>

#include <algorithm>

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

// Where an object sits, for error messages: "" (the body itself), "event." or "events[3].". Spelled
// out only when an error needs it, so a batch of 10,000 valid events spells out none.
struct Where {
  std::string_view prefix;          // "" or "event."
  std::optional<std::size_t> index;  // events[index].
  std::string str() const {
    return index ? "events[" + std::to_string(*index) + "]." : std::string(prefix);
  }
};

// A field's name in error messages ("events[3].cost_micros").
struct FieldName {
  const Where& where;
  std::string_view key;
  std::string str() const { return where.str() + std::string(key); }
};

Error wrong_type(const FieldName& field, JsonType t) {
  return invalid_field(field.str(), field.str() + " must be " + std::string(type_name(t)));
}

Error missing(const FieldName& field) {
  return invalid_field(field.str(), "Missing required field '" + field.str() + "'");
}

std::optional<Error> read_string(od::value value, od::json_type actual, const FieldName& field, JsonType type,
                                 std::string_view& out) {
  if (actual != od::json_type::string || value.get_string().get(out)) return wrong_type(field, type);
  return std::nullopt;
}

std::optional<Error> read_integer(od::value value, od::json_type actual, const FieldName& field, JsonType type,
                                  std::int64_t& out) {
  if (actual != od::json_type::number) return wrong_type(field, type);
  if (auto err = value.get_int64().get(out)) {
    if (err == simdjson::NUMBER_OUT_OF_RANGE) return invalid_field(field.str(), field.str() + " is out of range");
    return wrong_type(field, type);
  }
  return std::nullopt;
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
      std::string_view text;
      if (auto err = read_string(value, actual, field, type, text)) return err;
      out.text.assign(text);
      return std::nullopt;
    }
    case JsonType::integer:
    case JsonType::nullable_integer:
      return read_integer(value, actual, field, type, out.integer);
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
                                 const Where& where) {
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
      return missing(FieldName{where, specs[i].name});
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

// A usage event's fields, in the order their absence is reported. The hot path: read straight into
// the event, with no per-field buffers (a batch holds up to 10,000 of them).
enum UsageField : std::uint8_t { f_id, f_type, f_quantity, f_cost, f_occurred_at, f_org_id, usage_field_count };
constexpr std::string_view usage_field_names[usage_field_count] = {"id", "type", "quantity", "cost_micros",
                                                                   "occurred_at", "org_id"};
constexpr bool usage_field_required[usage_field_count] = {true, true, true, true, false, true};

std::size_t usage_field(std::string_view key, bool with_org) {
  for (std::size_t i = 0; i < usage_field_count; ++i) {
    if (usage_field_names[i] == key) return i == f_org_id && !with_org ? std::size_t{usage_field_count} : i;
  }
  return usage_field_count;
}

// A usage event as read, before its values are checked.
struct UsageFields {
  unsigned seen = 0;  // bit per UsageField
  std::int64_t quantity = 0;
  std::int64_t cost = 0;
  std::string_view occurred_at;  // valid until the parser's next document
};

// Reads one usage event object: known fields, each once, of its type, the required ones present.
// `with_org`: a batch or stream item, which names its org (required); a single event names it in the
// path instead (org_id is then an unknown field). Strings go straight into `out`.
std::optional<Error> read_usage_fields(od::object object, const Where& where, bool with_org, UsageFields& f,
                                       UsageEventIn& out) {
  for (auto field : object) {
    std::string_view key;
    if (auto err = field.unescaped_key().get(key)) return malformed(err);
    const std::size_t index = usage_field(key, with_org);
    const FieldName name{where, key};
    if (index == usage_field_count) return invalid_field(name.str(), "Unknown field '" + name.str() + "'");
    if (f.seen & (1u << index)) return invalid_field(name.str(), "Field '" + name.str() + "' appears twice");
    f.seen |= 1u << index;
    od::value value;
    if (auto err = field.value().get(value)) return malformed(err);
    od::json_type actual;
    if (auto err = value.type().get(actual)) return malformed(err);
    std::optional<Error> err;
    std::string_view text;
    switch (index) {
      case f_quantity: err = read_integer(value, actual, name, JsonType::integer, f.quantity); break;
      case f_cost: err = read_integer(value, actual, name, JsonType::integer, f.cost); break;
      default:
        err = read_string(value, actual, name, JsonType::string, text);
        if (err) break;
        if (index == f_id) out.event.id.assign(text);
        else if (index == f_type) out.event.type.assign(text);
        else if (index == f_org_id) out.org_id = text;
        else f.occurred_at = text;
    }
    if (err) return err;
  }
  for (std::size_t i = 0; i < usage_field_count; ++i) {
    if (usage_field_required[i] && !(f.seen & (1u << i)) && (i != f_org_id || with_org)) {
      return missing(FieldName{where, usage_field_names[i]});
    }
  }
  return std::nullopt;
}

// Checks the values read and completes the event.
std::optional<Error> check_usage_event(const UsageFields& f, const Where& where, domain::Timestamp now,
                                       UsageEventIn& out) {
  const auto refuse = [&](UsageField field, std::string_view why) {
    const std::string name = FieldName{where, usage_field_names[field]}.str();
    return invalid_field(name, name + " " + std::string(why));
  };
  if (auto why = domain::check_event_id(out.event.id)) return refuse(f_id, *why);
  if (auto why = domain::check_event_type(out.event.type)) return refuse(f_type, *why);
  if (auto why = domain::check_event_quantity(f.quantity)) return refuse(f_quantity, *why);
  if (auto why = domain::check_event_cost(f.cost)) return refuse(f_cost, *why);
  out.event.quantity = static_cast<std::uint64_t>(f.quantity);
  out.event.cost_micros = f.cost;
  out.event.occurred_at = now;
  if (f.seen & (1u << f_occurred_at)) {
    const auto t = domain::parse_rfc3339(f.occurred_at);
    if (!t) return refuse(f_occurred_at, "must be an RFC 3339 time");
    out.event.occurred_at = *t;
  }
  return std::nullopt;
}

// A batch or stream item: read, then checked.
std::optional<Error> read_usage_event(od::object object, const Where& where, domain::Timestamp now, UsageEventIn& out) {
  UsageFields f;
  if (auto err = read_usage_fields(object, where, true, f, out)) return err;
  return check_usage_event(f, where, now, out);
}

// The body's root object: refuses an empty body, invalid JSON and any other root value.
std::optional<Error> open_body(std::string& body, od::document& doc, od::object& object) {
  if (body.empty()) return invalid("The request body must be a JSON object");
  auto doc_result = iterate(body);
  if (auto err = std::move(doc_result).get(doc)) return malformed(err);
  return read_root_object(doc, object);
}

Error trailing_content() { return invalid("The request body has content after the JSON object"); }

}  // namespace

std::size_t padded_capacity(std::size_t bytes) { return bytes + simdjson::SIMDJSON_PADDING; }

void pad_body(std::string& body) {
  if (body.capacity() < padded_capacity(body.size())) body.reserve(padded_capacity(body.size()));
}

std::optional<Error> parse_object(std::string& body, std::span<const FieldSpec> specs, std::span<FieldValue> out) {
  od::document doc;
  od::object object;
  if (auto err = open_body(body, doc, object)) return err;
  if (auto err = read_fields(object, specs, out, Where{})) return err;
  if (!at_end(doc)) return trailing_content();
  return std::nullopt;
}

std::optional<Error> parse_usage_event(std::string& body, domain::Timestamp now, UsageEventIn& out) {
  od::document doc;
  od::object object;
  if (auto err = open_body(body, doc, object)) return err;
  // A single event names its org in the path: org_id is not one of its fields.
  UsageFields f;
  if (auto err = read_usage_fields(object, Where{}, false, f, out)) return err;
  if (!at_end(doc)) return trailing_content();  // before the values: the body is not one object
  return check_usage_event(f, Where{}, now, out);
}

// About the smallest batch item a client sends ({"id":…,"type":…,"quantity":…,"cost_micros":…,"org_id":"org_…"}
// with a real org id is over 80 bytes): reserving body bytes / this many items spares the growing
// vector's reallocations, each a move of every event parsed so far. A sizing hint, not a limit:
// smaller items just grow the vector, and a padded body reserves at most
// limits::usage_batch_events_max items (~1.4 MB), what a full batch holds anyway.
constexpr std::size_t usage_batch_item_bytes_hint = 80;

std::optional<Error> parse_usage_batch(std::string& body, domain::Timestamp now, std::vector<UsageEventIn>& out) {
  od::document doc;
  od::object root;
  if (auto err = open_body(body, doc, root)) return err;
  out.reserve(std::min(limits::usage_batch_events_max, body.size() / usage_batch_item_bytes_hint));
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
      const Where where{{}, index};
      od::object object;
      if (item.get_object().get(object)) {
        return Error{domain::Errc::invalid_request, "events[" + std::to_string(index) + "] must be an object",
                     {{"index", static_cast<std::int64_t>(index)}}};
      }
      if (auto err = read_usage_event(object, where, now, out.emplace_back())) {
        out.pop_back();
        err->details.emplace_back("index", static_cast<std::int64_t>(index));
        return err;
      }
      ++index;
    }
  }
  if (!seen_events) return invalid_field("events", "Missing required field 'events'");
  if (!at_end(doc)) return trailing_content();
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
      if (auto err = read_value(value, FieldName{Where{}, key}, JsonType::string, v)) return err;
      slot = std::move(v.text);
    } else if (key == "event") {
      if (has_event) return invalid_field("event", "Field 'event' appears twice");
      has_event = true;
      od::object object;
      if (value.get_object().get(object)) return invalid_field("event", "event must be an object");
      if (auto err = read_usage_event(object, Where{"event.", {}}, now, out.event)) return err;
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
