#include "bench/loadgen_report.hpp"

#include <cstdio>
#include <string>

namespace canopy::loadgen {
namespace {

// 1234567 -> "1,234,567"
std::string grouped(std::uint64_t value) {
  const std::string digits = std::to_string(value);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Right-aligns text in width columns.
std::string padded_left(std::string text, std::size_t width) {
  return text.size() >= width ? text : std::string(width - text.size(), ' ') + text;
}

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

double per_second(std::uint64_t count, double seconds) {
  return seconds > 0 ? static_cast<double>(count) / seconds : 0.0;
}

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// JSON string with the escapes a server-sent error code could need.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += escape;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Strings are built by appending only: GCC 12 reports a false -Wrestrict for "literal" + std::string.

// "key count  key count" for the table.
std::string counts_line(const std::vector<std::pair<std::string, std::uint64_t>>& rows) {
  std::string line;
  for (const auto& [key, count] : rows) {
    if (!line.empty()) line += "  ";
    line += key;
    line += ' ';
    line += grouped(count);
  }
  return line.empty() ? std::string{"-"} : line;
}

// {"key":count,...} for the JSON line.
std::string counts_json(const std::vector<std::pair<std::string, std::uint64_t>>& rows) {
  std::string json = "{";
  for (const auto& [key, count] : rows) {
    if (json.size() > 1) json += ',';
    json += quoted(key);
    json += ':';
    json += std::to_string(count);
  }
  json += '}';
  return json;
}

std::vector<std::pair<std::string, std::uint64_t>> status_rows(const Stats& stats) {
  std::vector<std::pair<std::string, std::uint64_t>> rows;
  for (std::size_t code = 0; code < Stats::status_codes_max; ++code) {
    if (stats.by_status[code] != 0) rows.emplace_back(code == 0 ? "other" : std::to_string(code), stats.by_status[code]);
  }
  return rows;
}

std::string loop_description(const Options& o) {
  if (o.rate <= 0) return "closed loop";
  std::string text = "open loop at ";
  text += fixed(o.rate, 0);
  text += " req/s";
  return text;
}

}  // namespace

void print_setup(std::ostream& out, const SetupReport& setup, std::size_t orgs, const std::vector<std::size_t>& per_level) {
  std::string levels;
  for (std::size_t level = 0; level < per_level.size(); ++level) {
    if (!levels.empty()) levels += ", ";
    levels += 'L';
    levels += std::to_string(level);
    levels += ' ';
    levels += grouped(per_level[level]);
  }
  out << "setup: 1 owner user, " << grouped(setup.roots) << " roots + " << grouped(setup.sub_orgs) << " sub-orgs = "
      << grouped(orgs) << " orgs (" << levels << "), " << grouped(setup.grants) << " grants, " << grouped(setup.limits)
      << " spending limits\n"
      << "setup: " << grouped(setup.requests) << " requests in " << fixed(setup.seconds, 2) << " s ("
      << fixed(per_second(setup.requests, setup.seconds), 0) << " req/s) over " << setup.connections << " connections\n";
}

void print_table(std::ostream& out, const RunSummary& run) {
  const Options& o = run.options;
  const Stats& s = run.stats;
  const Histogram& h = s.latency_ns;
  out << "\ncanopy-loadgen " << mode_name(o.mode) << " -> " << o.url << ": " << o.connections << " connections, "
      << o.threads << (o.threads == 1 ? " thread" : " threads") << ", pipeline " << o.pipeline << ", "
      << loop_description(o);
  if (o.mode == Mode::batch) out << ", " << grouped(o.batch_size) << " events/request";
  out << "\nmeasured " << fixed(run.measured_s, 2) << " s after " << fixed(o.warmup_s, 1) << " s warmup";
  if (run.orgs > 0) out << ", over " << grouped(run.orgs) << " orgs";
  out << "\n\n";
  const auto row = [&out, &run](const char* name, std::uint64_t count) {
    std::string label = name;
    label.resize(18, ' ');
    out << "  " << label << padded_left(grouped(count), 14) << padded_left(fixed(per_second(count, run.measured_s), 1), 18)
        << "\n";
  };
  out << "                             total        per second\n";
  row("requests", s.responses);
  if (o.mode != Mode::probe) {
    row("events accepted", s.events_accepted);
    row("events refused", s.events_refused);
  }
  out << "\n  http status       " << counts_line(status_rows(s)) << "\n"
      << "  error codes       " << counts_line(s.error_codes.sorted()) << "\n";
  if (o.mode != Mode::probe) out << "  refused events    " << counts_line(s.refused_by_code.sorted()) << "\n";
  out << "\n  latency ms        p50 " << fixed(ms(h.percentile(50)), 3) << "  p90 " << fixed(ms(h.percentile(90)), 3)
      << "  p99 " << fixed(ms(h.percentile(99)), 3) << "  p99.9 " << fixed(ms(h.percentile(99.9)), 3) << "  max "
      << fixed(ms(h.max()), 3) << "  mean " << fixed(h.mean() / 1e6, 3) << "\n";
  if (s.latency_lower_bounds > 0)
    out << "                    (includes " << grouped(s.latency_lower_bounds)
        << " requests never answered, as lower bounds: see unsent and unanswered)\n";
  out
      << "  transport         connect errors " << s.connect_errors << ", drops " << s.connection_drops << ", lost "
      << s.lost_requests << ", unanswered " << s.unanswered_requests << ", unsent " << s.unsent_requests
      << ", unparsed bodies " << s.unparsed_bodies << "\n"
      << "  traffic           " << grouped(s.requests_sent) << " requests sent in all (warmup and drain included), "
      << fixed(static_cast<double>(s.bytes_sent) / 1e6, 1) << " MB out, "
      << fixed(static_cast<double>(s.bytes_received) / 1e6, 1) << " MB in\n\n";
}

namespace {

// Appends "key":value pairs to one JSON object; values are written as given (numbers, objects) or quoted.
class JsonObject {
 public:
  JsonObject& raw(std::string_view key, std::string_view value) {
    text_ += text_.size() > 1 ? "," : "";
    text_ += quoted(key);
    text_ += ':';
    text_ += value;
    return *this;
  }
  JsonObject& number(std::string_view key, std::uint64_t value) { return raw(key, std::to_string(value)); }
  JsonObject& number(std::string_view key, double value, int decimals) { return raw(key, fixed(value, decimals)); }
  JsonObject& string(std::string_view key, std::string_view value) { return raw(key, quoted(value)); }
  std::string done() {
    text_ += '}';
    return std::move(text_);
  }

 private:
  std::string text_ = "{";
};

std::string latency_json(const Stats& s) {
  const Histogram& h = s.latency_ns;
  return JsonObject{}
      .number("p50", ms(h.percentile(50)), 4)
      .number("p90", ms(h.percentile(90)), 4)
      .number("p99", ms(h.percentile(99)), 4)
      .number("p999", ms(h.percentile(99.9)), 4)
      .number("max", ms(h.max()), 4)
      .number("mean", h.mean() / 1e6, 4)
      .number("samples", h.count())
      .number("lower_bounds", s.latency_lower_bounds)
      .done();
}

std::string transport_json(const Stats& s) {
  return JsonObject{}
      .number("connect_errors", s.connect_errors)
      .number("drops", s.connection_drops)
      .number("lost", s.lost_requests)
      .number("unanswered", s.unanswered_requests)
      .number("unsent", s.unsent_requests)
      .number("unparsed_bodies", s.unparsed_bodies)
      .number("requests_sent", s.requests_sent)
      .number("bytes_sent", s.bytes_sent)
      .number("bytes_received", s.bytes_received)
      .done();
}

}  // namespace

void print_json_line(std::ostream& out, const RunSummary& run) {
  const Options& o = run.options;
  const Stats& s = run.stats;
  const std::uint64_t events_per_request = o.mode == Mode::batch ? o.batch_size : o.mode == Mode::single ? 1 : 0;
  JsonObject json;
  json.string("tool", "canopy-loadgen")
      .string("mode", mode_name(o.mode))
      .string("url", o.url)
      .number("connections", std::uint64_t{o.connections})
      .number("threads", std::uint64_t{o.threads})
      .number("pipeline", std::uint64_t{o.pipeline})
      .number("rate", o.rate, 1)
      .number("batch_size", events_per_request)
      .number("warmup_s", o.warmup_s, 3)
      .number("measured_s", run.measured_s, 3)
      .number("orgs", std::uint64_t{run.orgs})
      .number("requests", s.responses)
      .number("requests_per_s", per_second(s.responses, run.measured_s), 1)
      .number("events_accepted", s.events_accepted)
      .number("events_accepted_per_s", per_second(s.events_accepted, run.measured_s), 1)
      .number("events_refused", s.events_refused)
      .number("events_refused_per_s", per_second(s.events_refused, run.measured_s), 1)
      .raw("status", counts_json(status_rows(s)))
      .raw("error_codes", counts_json(s.error_codes.sorted()))
      .raw("refused_by_code", counts_json(s.refused_by_code.sorted()))
      .raw("latency_ms", latency_json(s))
      .raw("transport", transport_json(s));
  if (run.setup != nullptr) {
    json.raw("setup", JsonObject{}
                          .number("orgs", std::uint64_t{run.setup->roots + run.setup->sub_orgs})
                          .number("requests", std::uint64_t{run.setup->requests})
                          .number("seconds", run.setup->seconds, 3)
                          .done());
  }
  out << json.done() << "\n";
}

}  // namespace canopy::loadgen
