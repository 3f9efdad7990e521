// The routes and the table that finds one for a request's method and path.
//
// Each pattern is split into its segments once, when the table is built; a request's path once per
// request. Matching every pattern against the raw path instead (a scan for the next '/' in both at
// every segment, for each of ~50 routes, and the {} segments copied for every route that matched)
// was 2.4% of the server's samples under single charges, all on the I/O thread (docs/benchmarks.md).
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "net/http.hpp"

namespace canopy::net {

struct Ctx;
using Handler = void (*)(Ctx&);

struct Route {
  Method method;
  std::string_view pattern;  // "/v1/orgs/{}/sub-orgs": literal segments and {} for one non-empty segment
  Handler handler;
  bool authenticated = true;
};

class RouteTable {
 public:
  // REQUIRES: every pattern starts with '/' and has at most segments_max segments.
  explicit RouteTable(std::vector<Route> routes);
  RouteTable(const RouteTable&) = delete;  // compiled_ points into routes_
  RouteTable& operator=(const RouteTable&) = delete;

  struct Match {
    const Route* route = nullptr;     // the first route of the path and method; null if none
    std::vector<std::string> params;  // its {} segments, in order
    std::string allow;                // with no route: the path's methods ("GET, PATCH"), empty if no such path
  };
  Match find(Method method, std::string_view path) const;

 private:
  static constexpr std::size_t segments_max = 8;  // room for the longest pattern (6 today); checked when built
  using Segments = std::array<std::string_view, segments_max>;

  struct Compiled {
    const Route* route;
    Segments segments;
    std::size_t count;
  };
  // Splits "/a/b" into "a", "b" ("/a/" into "a", ""); false if `path` does not start with '/' or has
  // more than `most` segments.
  static bool split(std::string_view path, std::size_t most, Segments& out, std::size_t& count);
  static bool matches(const Compiled& c, const Segments& segments, std::size_t count);

  std::vector<Route> routes_;
  std::vector<Compiled> compiled_;  // in the routes' order: of two routes for one request, the first wins
  std::size_t longest_ = 0;         // segments in the longest pattern
};

}  // namespace canopy::net
