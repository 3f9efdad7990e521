// RecentIds: the event ids an org actor is deciding or accepted ahead of the index (actors/recent_ids.hpp).
#include "actors/recent_ids.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace canopy::actors {
namespace {

using domain::OrgId;

bool known(const RecentIds& set, std::string_view id, std::uint64_t h) { return set.find(id, h) != nullptr; }

TEST(RecentIds, AnIdIsInTheSetFromItsInsertUntilItsErase) {
  RecentIds set;
  const std::string a = "evt_a", b = "evt_b";
  const auto ha = RecentIds::hash(a), hb = RecentIds::hash(b);
  EXPECT_FALSE(known(set, a, ha));
  set.insert(a, ha);
  EXPECT_TRUE(known(set, a, ha));
  EXPECT_TRUE(known(set, std::string("evt_a"), ha)) << "found by its bytes, wherever they are";
  EXPECT_FALSE(known(set, b, hb));
  set.insert(b, hb);
  set.erase(a.data(), ha);
  EXPECT_FALSE(known(set, a, ha));
  EXPECT_TRUE(known(set, b, hb));
  EXPECT_EQ(set.size(), 1u);
}

TEST(RecentIds, AnIdAnswersWithThePayerItWasInsertedWith) {
  RecentIds set;
  const std::string a = "evt_a", b = "evt_b";
  const auto ha = RecentIds::hash(a), hb = RecentIds::hash(b);
  set.insert(a, ha);
  set.insert(b, hb, OrgId{7});
  ASSERT_NE(set.find(a, ha), nullptr);
  EXPECT_EQ(*set.find(a, ha), OrgId::none) << "being decided";
  EXPECT_EQ(*set.find(std::string("evt_b"), hb), OrgId{7}) << "accepted, for its payer";
  set.erase(a.data(), ha);
  EXPECT_EQ(set.find(a, ha), nullptr);
  EXPECT_EQ(*set.find(b, hb), OrgId{7});
}

TEST(RecentIds, IdsWhoseHashesCollideAreToldApartByTheirBytes) {
  RecentIds set;
  const std::string a = "one", b = "two";
  set.insert(a, 42);
  EXPECT_FALSE(known(set, b, 42));
  set.insert(b, 42);
  EXPECT_TRUE(known(set, a, 42));
  EXPECT_TRUE(known(set, b, 42));
  set.erase(a.data(), 42);
  EXPECT_FALSE(known(set, a, 42));
  EXPECT_TRUE(known(set, b, 42));
}

// Random inserts and erases against a plain model, with hashes squeezed into a few values so probe runs
// are long, wrap around the table's end and are shifted back on every erase; through growth and the
// release of the table when it empties. Each id carries a payer (some none), which must move with it.
// Every step prefetches its id first, as a batch's walk does, also into the empty table: a hint only.
TEST(RecentIds, AgreesWithAPlainMapThroughCollisionsGrowthAndEmptying) {
  std::mt19937_64 rng(7);
  std::vector<std::string> ids;
  for (int i = 0; i < 4000; ++i) ids.push_back("evt_" + std::to_string(i));
  const auto payer_of = [](std::size_t i) { return i % 3 == 0 ? OrgId::none : OrgId{1000 + i}; };
  for (const std::uint64_t hash_values : {1ull, 5ull, 64ull, 1ull << 40}) {
    SCOPED_TRACE(hash_values);
    const auto squeezed = [&](const std::string& id) {
      const std::uint64_t h = RecentIds::hash(id) % hash_values;
      return h * 0x9e3779b97f4a7c15ull >> 3;  // spread over the table, colliding as often as the modulo says
    };
    const auto expect_entry = [&](const RecentIds& set, std::size_t i, bool present) {
      const OrgId* payer = set.find(ids[i], squeezed(ids[i]));
      ASSERT_EQ(payer != nullptr, present) << ids[i];
      if (payer) {
        ASSERT_EQ(*payer, payer_of(i)) << ids[i];
      }
    };
    RecentIds set;
    std::vector<bool> model(ids.size(), false);  // ids[i] in the set
    for (int step = 0; step < 40'000; ++step) {
      const std::size_t i = rng() % (step < 30'000 ? ids.size() : 64);
      const std::string& id = ids[i];
      const auto h = squeezed(id);
      set.prefetch(h);
      expect_entry(set, i, model[i]);
      if (model[i]) {
        set.erase(id.data(), h);
      } else {
        set.insert(id, h, payer_of(i));
      }
      model[i] = !model[i];
    }
    std::size_t expected = 0;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      expect_entry(set, i, model[i]);
      expected += model[i];
    }
    EXPECT_EQ(set.size(), expected);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (model[i]) set.erase(ids[i].data(), squeezed(ids[i]));
    }
    EXPECT_EQ(set.size(), 0u);
    for (const auto& id : ids) ASSERT_FALSE(known(set, id, squeezed(id))) << id;
  }
}

}  // namespace
}  // namespace canopy::actors
