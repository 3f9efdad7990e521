#include "bench/loadgen_workload.hpp"

#include <charconv>
#include <string_view>
#include <utility>

#include "bench/loadgen_batch_results.hpp"

namespace canopy::loadgen {
namespace {

void append_decimal(std::string& out, std::uint64_t value) {
  char digits[20];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  (void)ec;  // 20 digits hold any uint64
  out.append(digits, static_cast<std::size_t>(end - digits));
}

void append_hex(std::string& out, std::uint64_t value) {
  char digits[16];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value, 16);
  (void)ec;  // 16 hex digits hold any uint64
  out.append(digits, static_cast<std::size_t>(end - digits));
}

bool is_2xx(int status) { return status >= 200 && status < 300; }

}  // namespace

Workload::Workload(const Options& options, const Target& target, const Forest& forest, const std::string& run_tag,
                   unsigned thread_index)
    : options_(options), rng_(options.seed ^ (0x9e3779b97f4a7c15ULL * (thread_index + 1))) {
  org_ids_.reserve(forest.orgs.size());
  for (const auto& org : forest.orgs) org_ids_.push_back(&org.id);
  id_prefix_ = run_tag;
  append_hex(id_prefix_, thread_index);
  id_prefix_ += '-';
  const std::string& token = options.usage_token.empty() ? options.operator_token : options.usage_token;
  header_tail_ = "Host: " + target.host_header + "\r\nAuthorization: Bearer " + token +
                 "\r\nContent-Type: application/json\r\nContent-Length: ";
  probe_request_ = "GET /healthz HTTP/1.1\r\nHost: " + target.host_header + "\r\n\r\n";
  event_tail_ = R"(","type":")" + options.event_type + R"(","quantity":)" + std::to_string(options.quantity) +
                R"(,"cost_micros":)" + std::to_string(options.cost_micros) + "}";
}

void Workload::append_event_id(std::string& out) {
  out += id_prefix_;
  append_hex(out, next_event_++);
}

void Workload::finish_request(std::string& out) const {
  out += header_tail_;
  append_decimal(out, body_.size());
  out += "\r\n\r\n";
  out += body_;
}

std::uint32_t Workload::append_request(std::string& out) {
  switch (options_.mode) {
    case Mode::probe: out += probe_request_; return 0;
    case Mode::single: return append_single(out);
    case Mode::batch: return append_batch(out);
  }
  return 0;
}

// POST /v1/orgs/{id}/usage {"id","type","quantity","cost_micros"} for one random org.
std::uint32_t Workload::append_single(std::string& out) {
  const std::string& org = *org_ids_[rng_.below(org_ids_.size())];
  body_.assign(R"({"id":")");
  append_event_id(body_);
  body_ += event_tail_;
  out += "POST /v1/orgs/";
  out += org;
  out += "/usage HTTP/1.1\r\n";
  finish_request(out);
  return 1;
}

// POST /v1/usage:batch {"events":[…]} with batch_size events, each for a random org (of the whole
// forest, or of --batch-orgs orgs picked for this batch).
std::uint32_t Workload::append_batch(std::string& out) {
  body_.assign(R"({"events":[)");
  batch_pick_.clear();
  for (std::uint32_t k = 0; k < options_.batch_orgs; ++k) batch_pick_.push_back(org_ids_[rng_.below(org_ids_.size())]);
  for (std::uint32_t i = 0; i < options_.batch_size; ++i) {
    if (i != 0) body_ += ',';
    body_ += R"({"id":")";
    append_event_id(body_);
    body_ += R"(","org_id":")";
    body_ += batch_pick_.empty() ? *org_ids_[rng_.below(org_ids_.size())] : *batch_pick_[rng_.below(batch_pick_.size())];
    body_ += event_tail_;
  }
  body_ += "]}";
  out += "POST /v1/usage:batch HTTP/1.1\r\n";
  finish_request(out);
  return options_.batch_size;
}

std::size_t Workload::body_bytes_max() const {
  std::size_t org_bytes_max = 0;
  for (const auto* id : org_ids_) org_bytes_max = std::max(org_bytes_max, id->size());
  const std::size_t event_id_bytes_max = id_prefix_.size() + 16;
  const std::size_t event_bytes = 7 + event_id_bytes_max + 12 + org_bytes_max + event_tail_.size() + 1;
  return options_.mode == Mode::batch ? 12 + event_bytes * options_.batch_size : 7 + event_id_bytes_max + event_tail_.size();
}

void Workload::count_response(int status, const std::string& body, std::uint32_t events, Stats& stats) {
  ++stats.responses;
  stats.count_status(status);
  if (options_.mode == Mode::probe) {
    if (!is_2xx(status)) stats.error_codes.add("http_" + std::to_string(status));
    return;
  }
  if (!is_2xx(status)) return count_refusal(status, body, events, stats);
  if (options_.mode == Mode::single) return count_single_ok(body, stats);
  count_batch_ok(body, events, stats);
}

// A 2xx single answer: {"id", "status": "accepted", "payer_org_id"}.
void Workload::count_single_ok(const std::string& body, Stats& stats) {
  simdjson::ondemand::document doc;
  std::string_view status;
  if (json_.iterate(body.data(), body.size(), body.capacity()).get(doc) || doc["status"].get_string().get(status)) {
    ++stats.unparsed_bodies;
    status = "accepted";  // the status line said so
  }
  if (status == "accepted") {
    ++stats.events_accepted;
  } else {
    ++stats.events_refused;
    stats.refused_by_code.add(status);
  }
}

// A 2xx batch answer: {"results": [{"id", "status", "code"?}, …]}, one per event, in order.
void Workload::count_batch_ok(const std::string& body, std::uint32_t events, Stats& stats) {
  simdjson::ondemand::document doc;
  std::uint32_t seen = 0;
  const bool parsed = !json_.iterate(body.data(), body.size(), body.capacity()).get(doc) &&
                      visit_batch_results(doc, [&](std::string_view status, std::string_view code) {
                        ++seen;
                        if (status == "accepted") {
                          ++stats.events_accepted;
                        } else {
                          ++stats.events_refused;
                          stats.refused_by_code.add(!code.empty()     ? code
                                                    : !status.empty() ? status
                                                                      : std::string_view{"(no status)"});
                        }
                        return true;
                      });
  if (!parsed) {
    ++stats.unparsed_bodies;
    return;
  }
  if (seen != events) ++stats.unparsed_bodies;
}

// A non-2xx answer refuses every event of the request: {"error": {"code", "message", "details"}}.
void Workload::count_refusal(int status, const std::string& body, std::uint32_t events, Stats& stats) {
  simdjson::ondemand::document doc;
  std::string_view code;
  std::string fallback;
  if (json_.iterate(body.data(), body.size(), body.capacity()).get(doc) ||
      doc["error"]["code"].get_string().get(code)) {
    fallback = "http_" + std::to_string(status);
    code = fallback;
  }
  stats.error_codes.add(code);
  stats.events_refused += events;
  stats.refused_by_code.add(code, events);
}

}  // namespace canopy::loadgen
