// RouteTable: which route a request's method and path reach, with its {} segments, or which methods
// the path has (net/route_table.hpp).
#include "net/route_table.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace canopy::net {
namespace {

void handler(Ctx&) {}

RouteTable table() {
  return RouteTable({
      {Method::get, "/healthz", handler, false},
      {Method::get, "/v1/orgs/{}", handler},
      {Method::patch, "/v1/orgs/{}", handler},
      {Method::get, "/v1/orgs/mine", handler},  // after {}: never reached by GET
      {Method::post, "/v1/orgs/mine", handler},
      {Method::post, "/v1/orgs/{}/usage", handler},
      {Method::get, "/v1/orgs/{}/webhooks/{}/deliveries", handler},
      {Method::post, "/v1/usage:batch", handler},
  });
}

std::string reached(const RouteTable& routes, Method method, std::string_view path) {
  const auto m = routes.find(method, path);
  return m.route ? std::string(m.route->pattern) : "";
}

TEST(RouteTable, APathReachesTheRouteOfItsMethodWithItsSegmentsInOrder) {
  const auto routes = table();
  const auto m = routes.find(Method::get, "/v1/orgs/org_a/webhooks/wh_b/deliveries");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/v1/orgs/{}/webhooks/{}/deliveries");
  EXPECT_EQ(m.params, (std::vector<std::string>{"org_a", "wh_b"}));
  EXPECT_TRUE(m.allow.empty());

  const auto usage = routes.find(Method::post, "/v1/orgs/org_a/usage");
  ASSERT_NE(usage.route, nullptr);
  EXPECT_EQ(usage.route->pattern, "/v1/orgs/{}/usage");
  EXPECT_EQ(usage.params, (std::vector<std::string>{"org_a"}));

  const auto health = routes.find(Method::get, "/healthz");
  ASSERT_NE(health.route, nullptr);
  EXPECT_FALSE(health.route->authenticated);
  EXPECT_TRUE(health.params.empty());
}

TEST(RouteTable, OfTwoRoutesForOneRequestTheFirstWins) {
  const auto routes = table();
  EXPECT_EQ(reached(routes, Method::get, "/v1/orgs/mine"), "/v1/orgs/{}");
  const auto m = routes.find(Method::get, "/v1/orgs/mine");
  EXPECT_EQ(m.params, (std::vector<std::string>{"mine"}));
  EXPECT_EQ(reached(routes, Method::post, "/v1/orgs/mine"), "/v1/orgs/mine");
}

TEST(RouteTable, AKnownPathWithAnotherMethodNamesTheMethodsItHasInRouteOrder) {
  const auto routes = table();
  const auto m = routes.find(Method::del, "/v1/orgs/mine");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allow, "GET, PATCH, GET, POST") << "each route of the path, as the table lists them";
  EXPECT_TRUE(m.params.empty());
  EXPECT_EQ(routes.find(Method::other, "/healthz").allow, "GET");
  EXPECT_EQ(routes.find(Method::get, "/v1/usage:batch").allow, "POST");
}

TEST(RouteTable, APathNoRouteHasReachesNothingAndHasNoMethods) {
  const auto routes = table();
  for (const char* path : {"", "/", "healthz", "/healthz/", "//healthz", "/HEALTHZ", "/v1/orgs", "/v1/orgs/",
                           "/v1/orgs//usage", "/v1/orgs/org_a/usage/", "/v1/orgs/org_a/nothing", "/v1/usage:batchx",
                           "/v1/orgs/org_a/webhooks//deliveries", "/v1/orgs/org_a/webhooks/wh_b/deliveries/x",
                           "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p"}) {
    for (const Method method : {Method::get, Method::post, Method::patch}) {
      const auto m = routes.find(method, path);
      EXPECT_EQ(m.route, nullptr) << path;
      EXPECT_TRUE(m.allow.empty()) << path << ": " << m.allow;
      EXPECT_TRUE(m.params.empty()) << path;
    }
  }
}

}  // namespace
}  // namespace canopy::net
