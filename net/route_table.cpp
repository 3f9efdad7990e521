#include "net/route_table.hpp"

#include <algorithm>

#include "domain/org.hpp"  // CANOPY_ASSERT

namespace canopy::net {

namespace {

constexpr std::string_view param_segment = "{}";

std::string_view method_name(Method m) {
  switch (m) {
    case Method::get: return "GET";
    case Method::post: return "POST";
    case Method::put: return "PUT";
    case Method::patch: return "PATCH";
    case Method::del: return "DELETE";
    case Method::other: break;
  }
  return "";
}

}  // namespace

RouteTable::RouteTable(std::vector<Route> routes) : routes_(std::move(routes)) {
  compiled_.reserve(routes_.size());
  for (const Route& route : routes_) {
    Compiled c{&route, {}, 0};
    const bool fits = split(route.pattern, segments_max, c.segments, c.count);
    CANOPY_ASSERT(fits);
    longest_ = std::max(longest_, c.count);
    compiled_.push_back(c);
  }
}

bool RouteTable::split(std::string_view path, std::size_t most, Segments& out, std::size_t& count) {
  if (path.empty() || path.front() != '/') return false;
  path.remove_prefix(1);
  count = 0;
  for (;;) {
    if (count == most) return false;
    const auto slash = path.find('/');
    out[count++] = path.substr(0, slash);
    if (slash == std::string_view::npos) return true;
    path.remove_prefix(slash + 1);
  }
}

bool RouteTable::matches(const Compiled& c, const Segments& segments, std::size_t count) {
  if (c.count != count) return false;
  for (std::size_t i = 0; i < count; ++i) {
    const std::string_view want = c.segments[i];
    if (want == param_segment ? segments[i].empty() : want != segments[i]) return false;
  }
  return true;
}

RouteTable::Match RouteTable::find(Method method, std::string_view path) const {
  Match m;
  Segments segments;
  std::size_t count = 0;
  if (!split(path, longest_, segments, count)) return m;  // longer than every route: none
  bool path_known = false;
  for (const Compiled& c : compiled_) {
    if (!matches(c, segments, count)) continue;
    path_known = true;
    if (c.route->method != method) continue;
    m.route = c.route;
    for (std::size_t i = 0; i < count; ++i) {
      if (c.segments[i] == param_segment) m.params.emplace_back(segments[i]);
    }
    return m;
  }
  if (!path_known) return m;
  for (const Compiled& c : compiled_) {
    if (!matches(c, segments, count)) continue;
    m.allow.append(m.allow.empty() ? "" : ", ").append(method_name(c.route->method));
  }
  return m;
}

}  // namespace canopy::net
