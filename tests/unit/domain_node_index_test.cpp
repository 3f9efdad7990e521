// NodeIndex: the hash index over a node-based container's nodes (domain/node_index.hpp), as the usage
// rollup keys it (bucket keys, keyed hash) and as the materializer and the directory do (org ids,
// OrgIdMix).
#include "domain/node_index.hpp"

#include "domain/keyed_hash.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace canopy::domain {
namespace {

using Map = std::map<std::string, int>;
using Index = NodeIndex<Map::value_type, KeyedHash>;

void add(Map& map, Index& index, const std::string& key, int value) {
  auto [it, inserted] = map.emplace(key, value);
  ASSERT_TRUE(inserted);
  index.insert(&*it, Index::hash(key));
}

TEST(NodeIndex, FindsEachNodeByItsKeyAndNothingForOtherKeys) {
  Map map;
  Index index;
  EXPECT_EQ(index.find("a", Index::hash("a")), nullptr);
  add(map, index, "a", 1);
  add(map, index, std::string("b\0c", 3), 2);  // keys are bytes: a zero byte is part of the key
  ASSERT_NE(index.find("a", Index::hash("a")), nullptr);
  EXPECT_EQ(index.find("a", Index::hash("a")), &*map.find("a"));
  EXPECT_EQ(index.find(std::string_view("b\0c", 3), Index::hash(std::string_view("b\0c", 3)))->second, 2);
  EXPECT_EQ(index.find("b", Index::hash("b")), nullptr);
  EXPECT_EQ(index.size(), 2u);
}

// Random inserts and erases (the rollup's buckets come and are forgotten) against the map itself,
// through many doublings and long probe runs: after every step each key in the map is found at its
// node, and each key erased is not found, however the backward shifts moved the others.
TEST(NodeIndex, AgreesWithTheMapThroughInsertsAndErases) {
  std::mt19937_64 rng(5);
  Map map;
  Index index;
  std::vector<std::string> erased;
  for (int step = 0; step < 20'000; ++step) {
    if (!map.empty() && rng() % 3 == 0) {
      auto it = map.begin();
      std::advance(it, static_cast<long>(rng() % map.size()));
      index.erase(&*it);
      erased.push_back(it->first);
      map.erase(it);
    } else {
      std::string key = "bucket-" + std::to_string(rng() % 1'000'000);
      if (!map.count(key)) {
        add(map, index, key, step);
      }
    }
    if (step % 500 == 0) {
      ASSERT_EQ(index.size(), map.size());
      for (auto& node : map) ASSERT_EQ(index.find(node.first, Index::hash(node.first)), &node) << node.first;
      for (const auto& key : erased) {
        if (!map.count(key)) {
          ASSERT_EQ(index.find(key, Index::hash(key)), nullptr) << key;
        }
      }
    }
  }
  EXPECT_EQ(index.size(), map.size());
}

// The writer's orgs: an unordered_map's nodes, keyed by org id. Ids in a run (as tests and imports
// make them) and random ones (as the service makes them) alike, through erases of half of them.
TEST(NodeIndex, IndexesOrgsByIdInRunsAndAtRandom) {
  using Orgs = std::unordered_map<OrgId, int>;
  NodeIndex<Orgs::value_type, OrgIdMix> index;
  Orgs orgs;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 10'000; ++i) {
    const OrgId id{i % 2 ? 1'000 + static_cast<std::uint64_t>(i) : rng()};
    auto [it, inserted] = orgs.emplace(id, i);
    if (inserted) index.insert(&*it, index.hash(id));
  }
  for (auto it = orgs.begin(); it != orgs.end();) {
    if (it->second % 4 == 1) {
      index.erase(&*it);
      it = orgs.erase(it);
    } else {
      ++it;
    }
  }
  ASSERT_EQ(index.size(), orgs.size());
  for (auto& node : orgs) ASSERT_EQ(index.find(node.first, index.hash(node.first)), &node);
  for (int i = 1; i < 10'000; i += 4) {  // the erased ones of the run
    const OrgId id{1'000 + static_cast<std::uint64_t>(i)};
    EXPECT_EQ(index.find(id, index.hash(id)), nullptr) << i;
  }
}

}  // namespace
}  // namespace canopy::domain
