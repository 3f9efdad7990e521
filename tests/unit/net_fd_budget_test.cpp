// Goal: the connection cap always fits in the file-descriptor limit with limits::fds_reserved to spare,
// the soft limit is raised as far as the cap needs and never past the hard limit or lowered, and the
// start line says what was configured, what it needs, the limit and what is served.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include "config/limits.hpp"
#include "net/fd_budget.hpp"

using namespace canopy;
using namespace canopy::net;

namespace {

constexpr std::uint64_t reserve = limits::fds_reserved;

}  // namespace

TEST(FdLimitWanted, IsWhatTheCapNeedsWhenTheHardLimitAllowsIt) {
  EXPECT_EQ(wanted_fd_limit(20000, 1024, 1'048'576), 20000 + reserve);
  EXPECT_EQ(wanted_fd_limit(20000, 1024, RLIM_INFINITY), 20000 + reserve);
}

TEST(FdLimitWanted, StopsAtTheHardLimit) {
  EXPECT_EQ(wanted_fd_limit(20000, 1024, 4096), 4096u);
  EXPECT_EQ(wanted_fd_limit(20000, 20000, 20000), 20000u) << "soft already at hard: nothing to raise";
}

TEST(FdLimitWanted, NeverLowersTheSoftLimit) {
  EXPECT_EQ(wanted_fd_limit(100, 65536, 65536), 65536u);
  EXPECT_EQ(wanted_fd_limit(100, RLIM_INFINITY, RLIM_INFINITY), RLIM_INFINITY);
}

TEST(FdBudgetPlan, ServesTheWholeCapWhenItFits) {
  const auto b = plan_fd_budget(20000, 20000 + reserve);
  EXPECT_TRUE(b.serves_all());
  EXPECT_FALSE(b.serves_none());
  EXPECT_EQ(b.connections_max, 20000u);
  EXPECT_EQ(b.fds_needed, 20000 + reserve);
  EXPECT_TRUE(plan_fd_budget(20000, RLIM_INFINITY).serves_all());
}

TEST(FdBudgetPlan, OneDescriptorShortServesOneConnectionLess) {
  const auto b = plan_fd_budget(20000, 20000 + reserve - 1);
  EXPECT_FALSE(b.serves_all());
  EXPECT_EQ(b.connections_max, 19999u);
}

TEST(FdBudgetPlan, ALowLimitKeepsTheReserveFree) {
  // This machine's default: soft and hard 20,000, the same as the default --max-connections.
  const auto here = plan_fd_budget(limits::connections_default, 20000);
  EXPECT_EQ(here.connections_max, 20000 - reserve);
  EXPECT_EQ(here.connections_max + reserve, here.fd_limit);

  const auto small = plan_fd_budget(limits::connections_default, 1024);
  EXPECT_EQ(small.connections_max, 1024 - reserve);
  EXPECT_EQ(small.fd_limit, 1024u);
  EXPECT_EQ(small.connections_configured, limits::connections_default);
}

TEST(FdBudgetPlan, TheSmallestServingLimitServesTheLeastConfigurableCap) {
  const auto b = plan_fd_budget(limits::connections_default, reserve + limits::connections_min);
  EXPECT_EQ(b.connections_max, limits::connections_min);
  EXPECT_FALSE(b.serves_none());
}

TEST(FdBudgetPlan, ALimitTooLowForTheLeastCapServesNone) {
  EXPECT_TRUE(plan_fd_budget(limits::connections_default, reserve + limits::connections_min - 1).serves_none());
  EXPECT_TRUE(plan_fd_budget(limits::connections_default, reserve).serves_none());
  EXPECT_TRUE(plan_fd_budget(limits::connections_default, 64).serves_none());
  EXPECT_TRUE(plan_fd_budget(limits::connections_default, 0).serves_none()) << "getrlimit failed";
}

TEST(FdBudgetPlan, AConfiguredCapBelowTheLimitIsKeptAsIs) {
  const auto b = plan_fd_budget(limits::connections_min, 1024);
  EXPECT_TRUE(b.serves_all());
  EXPECT_EQ(b.connections_max, limits::connections_min);
}

TEST(FdBudgetDescribe, NamesTheCapTheNeedTheLimitAndWhatIsServed) {
  EXPECT_EQ(describe(plan_fd_budget(20000, 1024)),
            "--max-connections 20000 needs " + std::to_string(20000 + reserve) +
                " file descriptors but the limit is 1024; serving at most " + std::to_string(1024 - reserve) +
                " connections");
}

TEST(FdBudgetDescribe, SaysWhatToRaiseTheLimitToWhenNothingFits) {
  const auto line = describe(plan_fd_budget(20000, 100));
  EXPECT_NE(line.find("the limit is 100"), std::string::npos) << line;
  EXPECT_NE(line.find("at least " + std::to_string(reserve + limits::connections_min)), std::string::npos) << line;
}

TEST(FdBudgetApply, LeavesASoftLimitThatHoldsTheBudget) {
  // The real process: whatever the limits are, the budget fits in the soft limit now in force, and
  // the soft limit was not lowered.
  rlimit before{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  const auto b = apply_fd_budget(limits::connections_min);
  rlimit after{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &after), 0);
  EXPECT_GE(after.rlim_cur, before.rlim_cur);
  EXPECT_EQ(after.rlim_max, before.rlim_max);
  EXPECT_EQ(b.fd_limit, after.rlim_cur);
  if (!b.serves_none()) {
    EXPECT_LE(b.connections_max + reserve, after.rlim_cur);
  }
}
