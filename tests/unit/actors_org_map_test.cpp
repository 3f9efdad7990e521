// OrgMap: the directory's map from org id to its entry (actors/org_map.hpp).
#include "actors/org_map.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

namespace canopy::actors {
namespace {

using domain::OrgId;

TEST(OrgMap, AnIdHasAValueFromItsFirstUseAndNoOtherIdHasIt) {
  OrgMap<int> map;
  EXPECT_EQ(map.find(OrgId{7}), nullptr);
  map[OrgId{7}] = 70;
  ASSERT_NE(map.find(OrgId{7}), nullptr);
  EXPECT_EQ(*map.find(OrgId{7}), 70);
  EXPECT_EQ(map.find(OrgId{8}), nullptr);
  map[OrgId{7}] += 1;  // the same value again, not a second one
  EXPECT_EQ(*map.find(OrgId{7}), 71);
  EXPECT_EQ(map.size(), 1u);
}

// Random ids (as the service makes them) and runs of consecutive ones, against a plain map, through
// many doublings of the table: every value is found, at the address it was given first, and the
// walk lists every id once, in the order each was first used.
TEST(OrgMap, AgreesWithAPlainMapAndNeverMovesAValueThroughGrowth) {
  std::mt19937_64 rng(11);
  OrgMap<std::uint64_t> map;
  std::map<OrgId, std::uint64_t> model;
  std::map<OrgId, const std::uint64_t*> address;
  std::vector<OrgId> order;
  for (int i = 0; i < 20'000; ++i) {
    const OrgId id{i % 4 == 0 ? 1000 + static_cast<std::uint64_t>(i) : (rng() | 1)};
    if (!model.count(id)) order.push_back(id);
    map[id] += static_cast<std::uint64_t>(i);
    model[id] += static_cast<std::uint64_t>(i);
    address.try_emplace(id, map.find(id));
  }
  ASSERT_EQ(map.size(), model.size());
  for (const auto& [id, value] : model) {
    const std::uint64_t* found = map.find(id);
    ASSERT_NE(found, nullptr) << domain::raw(id);
    EXPECT_EQ(*found, value);
    EXPECT_EQ(found, address.at(id)) << "moved";
  }
  for (int i = 0; i < 1000; ++i) {  // even and above every run: never used
    EXPECT_EQ(map.find(OrgId{(rng() << 1) | (1ull << 63)}), nullptr);
  }
  std::vector<OrgId> walked;
  for (const auto& [id, value] : map) walked.push_back(id);
  EXPECT_EQ(walked, order);
}

}  // namespace
}  // namespace canopy::actors
