// Reading a usage:batch answer, {"results": [{"id", "status", "code"?}, …]} (one result per event, in
// order), as both load tools do.
#pragma once

#include <simdjson.h>

#include <string_view>

namespace canopy::loadgen {

// Calls visit(status, code) for each result in order ("" for a missing field) until it returns false.
// False when the document has no "results" array.
template <class Visit>
bool visit_batch_results(simdjson::ondemand::document& doc, Visit&& visit) {
  simdjson::ondemand::array results;
  if (doc["results"].get_array().get(results)) return false;
  for (auto item : results) {
    simdjson::ondemand::object result;
    if (item.get_object().get(result)) break;
    std::string_view status, code;
    for (auto field_or_error : result) {
      simdjson::ondemand::field field;
      if (std::move(field_or_error).get(field)) break;
      if (field.key() == "status") {
        if (field.value().get_string().get(status)) status = {};
      } else if (field.key() == "code") {
        if (field.value().get_string().get(code)) code = {};
      }
    }
    if (!visit(status, code)) break;
  }
  return true;
}

}  // namespace canopy::loadgen
