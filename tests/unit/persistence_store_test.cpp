// Goal: the LMDB Store keeps exactly what was committed: every op list is applied whole or not at all,
// reads see committed state only, scans honor prefix, start key and order, data survives closing and
// reopening, and copy_compacted makes a store that opens on its own with the same contents.
// Every test gets a fresh data folder under /tmp, removed afterwards.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "persistence/keys.hpp"
#include "persistence/store.hpp"

using namespace canopy::persistence;

namespace {

using Rows = std::vector<std::pair<std::string, std::string>>;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/canopy_store_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/data";
  }

  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(root_);
  }

  std::unique_ptr<Store> open(const std::string& dir, LmdbOptions options = {}) {
    Status status;
    auto store = open_lmdb_store(dir, options, status);
    EXPECT_TRUE(status.ok()) << status.message;
    EXPECT_NE(store, nullptr);
    return store;
  }

  void reopen() {
    store_.reset();
    store_ = open(dir_);
  }

  static Status put(Store& store, Table table, std::string key, std::string value) {
    const WriteOp op{table, std::move(key), std::move(value), false};
    return store.commit(std::span<const WriteOp>(&op, 1));
  }

  static std::optional<std::string> get(const Store& store, Table table, std::string_view key) {
    std::string value;
    const Status s = store.get(table, key, value);
    if (s.is_not_found()) return std::nullopt;
    EXPECT_TRUE(s.ok()) << s.message;
    return value;
  }

  static Rows scan(const Store& store, Table table, std::string_view prefix, std::string_view from = {},
                   std::size_t max_rows = 1000) {
    Rows rows;
    const Status s = store.scan(table, prefix, from, [&](std::string_view k, std::string_view v) {
      rows.emplace_back(std::string(k), std::string(v));
      return rows.size() < max_rows;
    });
    EXPECT_TRUE(s.ok()) << s.message;
    return rows;
  }

  // Every row of the two tables the many-op tests write, by (table, key).
  static std::map<std::pair<int, std::string>, std::string> event_ids_and_usage(const Store& store) {
    std::map<std::pair<int, std::string>, std::string> rows;
    for (const Table table : {Table::event_ids, Table::usage}) {
      for (const auto& [k, v] : scan(store, table, {}, {}, SIZE_MAX)) rows[{static_cast<int>(table), k}] = v;
    }
    return rows;
  }

  std::string root_;
  std::string dir_;
  std::unique_ptr<Store> store_;
};

WriteOp put_op(Table table, std::string key, std::string value) {
  return WriteOp{table, std::move(key), std::move(value), false};
}
WriteOp erase_op(Table table, std::string key) { return WriteOp{table, std::move(key), {}, true}; }

// A key LMDB refuses (its default maximum key size is 511 bytes): a way to make one op of a list fail.
std::string oversized_key() { return std::string(600, 'k'); }

}  // namespace

TEST_F(StoreTest, OpensAnEmptyStoreInANewFolder) {
  store_ = open(dir_);
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(get(*store_, Table::meta, "schema"), std::nullopt);
  EXPECT_TRUE(scan(*store_, Table::journal, {}).empty());
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/data.mdb"));
}

TEST_F(StoreTest, MissingKeyIsNotFoundNotAnError) {
  store_ = open(dir_);
  std::string value = "untouched";
  const Status s = store_->get(Table::orgs, "nope", value);
  EXPECT_TRUE(s.is_not_found());
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(value, "untouched");
}

TEST_F(StoreTest, CommittedValueCanBeReadBack) {
  store_ = open(dir_);
  ASSERT_TRUE(put(*store_, Table::orgs, "k", "v").ok());
  EXPECT_EQ(get(*store_, Table::orgs, "k"), "v");
}

TEST_F(StoreTest, BinaryKeysAndValuesWithZeroBytesRoundTrip) {
  store_ = open(dir_);
  const std::string key = u64_key(0);  // eight zero bytes
  const std::string value("\0\x01\xff\0", 4);
  ASSERT_TRUE(put(*store_, Table::journal, key, value).ok());
  EXPECT_EQ(get(*store_, Table::journal, key), value);
  EXPECT_EQ(get(*store_, Table::journal, key.substr(0, 7)), std::nullopt);
}

TEST_F(StoreTest, LaterCommitOverwritesAValue) {
  store_ = open(dir_);
  ASSERT_TRUE(put(*store_, Table::orgs, "k", "one").ok());
  ASSERT_TRUE(put(*store_, Table::orgs, "k", "two").ok());
  EXPECT_EQ(get(*store_, Table::orgs, "k"), "two");
}

TEST_F(StoreTest, LaterOpInTheSameCommitWins) {
  store_ = open(dir_);
  const std::vector<WriteOp> ops = {put_op(Table::orgs, "k", "one"), put_op(Table::orgs, "k", "two"),
                                    put_op(Table::orgs, "gone", "x"), erase_op(Table::orgs, "gone")};
  ASSERT_TRUE(store_->commit(ops).ok());
  EXPECT_EQ(get(*store_, Table::orgs, "k"), "two");
  EXPECT_EQ(get(*store_, Table::orgs, "gone"), std::nullopt);
}

TEST_F(StoreTest, TablesAreSeparateNamespaces) {
  store_ = open(dir_);
  const std::vector<WriteOp> ops = {put_op(Table::orgs, "same", "org"), put_op(Table::users, "same", "user")};
  ASSERT_TRUE(store_->commit(ops).ok());
  EXPECT_EQ(get(*store_, Table::orgs, "same"), "org");
  EXPECT_EQ(get(*store_, Table::users, "same"), "user");
  EXPECT_EQ(get(*store_, Table::tokens, "same"), std::nullopt);
}

TEST_F(StoreTest, EraseRemovesOnlyThatKey) {
  store_ = open(dir_);
  ASSERT_TRUE(store_->commit(std::vector<WriteOp>{put_op(Table::emails, "a", "1"), put_op(Table::emails, "b", "2")}).ok());
  ASSERT_TRUE(store_->commit(std::vector<WriteOp>{erase_op(Table::emails, "a")}).ok());
  EXPECT_EQ(get(*store_, Table::emails, "a"), std::nullopt);
  EXPECT_EQ(get(*store_, Table::emails, "b"), "2");
}

TEST_F(StoreTest, ErasingAnAbsentKeySucceedsAndChangesNothing) {
  store_ = open(dir_);
  ASSERT_TRUE(put(*store_, Table::emails, "a", "1").ok());
  EXPECT_TRUE(store_->commit(std::vector<WriteOp>{erase_op(Table::emails, "never")}).ok());
  EXPECT_EQ(scan(*store_, Table::emails, {}), (Rows{{"a", "1"}}));
}

TEST_F(StoreTest, EmptyOpListCommitsNothing) {
  store_ = open(dir_);
  EXPECT_TRUE(store_->commit({}).ok());
  EXPECT_TRUE(scan(*store_, Table::meta, {}).empty());
}

// "k17": built by appending (GCC 12's -Wrestrict misfires on "k" + std::to_string(n)).
std::string numbered(std::string_view prefix, std::uint64_t n) {
  std::string out(prefix);
  out += std::to_string(n);
  return out;
}

// A commit of thousands of ops in no particular order, over several tables and many leaf pages, with
// repeated keys, ends as if applied one by one in the caller's order (the store applies them in key
// order through cursors: ops on one key must keep their order).
TEST_F(StoreTest, AManyOpCommitEndsAsIfAppliedInOrder) {
  store_ = open(dir_);
  std::map<std::pair<int, std::string>, std::string> expected;
  std::vector<WriteOp> ops;
  std::uint64_t x = 12345;
  const auto next = [&] { return x = x * 6364136223846793005ULL + 1442695040888963407ULL; };
  for (int i = 0; i < 6000; ++i) {
    const Table table = next() % 2 ? Table::event_ids : Table::usage;
    const std::string key = numbered("k", next() % 2500);  // about 2.4 ops per key
    if (next() % 5 == 0) {
      ops.push_back(erase_op(table, key));
      expected.erase({static_cast<int>(table), key});
    } else {
      const std::string value(static_cast<std::size_t>(next() % 300), static_cast<char>('a' + i % 26));
      ops.push_back(put_op(table, key, value));
      expected[{static_cast<int>(table), key}] = value;
    }
  }
  ASSERT_TRUE(store_->commit(ops).ok());
  EXPECT_EQ(event_ids_and_usage(*store_), expected);
}

// What the writer commits: runs of ascending keys (a batch's event ids, a checkpoint slice), runs
// that overlap, keys repeated across runs and within one, an odd number of runs in one table and an
// even number in the other. The last op on a key still wins.
TEST_F(StoreTest, OpsInAscendingRunsEndAsIfAppliedInOrder) {
  store_ = open(dir_);
  std::map<std::pair<int, std::string>, std::string> expected;
  std::vector<WriteOp> ops;
  const auto add = [&](Table table, int key, bool erase, const std::string& value) {
    const std::string k = numbered("k", static_cast<std::uint64_t>(1000 + key));  // same width: key order
    ops.push_back(erase ? erase_op(table, k) : put_op(table, k, value));
    if (erase) {
      expected.erase({static_cast<int>(table), k});
    } else {
      expected[{static_cast<int>(table), k}] = value;
    }
  };
  for (int run = 0; run < 7; ++run) {
    const Table table = run % 3 == 2 ? Table::usage : Table::event_ids;  // 5 runs and 2 runs
    const int from = (run * 37) % 50;
    for (int k = from; k < from + 40; ++k) {
      add(table, k, (k + run) % 7 == 0, numbered("run", static_cast<std::uint64_t>(run * 1000 + k)));
      if (k % 10 == 0) add(table, k, false, numbered("again", static_cast<std::uint64_t>(run)));  // twice in a run
    }
  }
  ASSERT_TRUE(store_->commit(ops).ok());
  EXPECT_EQ(event_ids_and_usage(*store_), expected);
}

// get_many answers each key as get() would, in the caller's order, whatever that order is, with
// absent and repeated keys among them.
TEST_F(StoreTest, GetManyAnswersEachKeyAsGetWould) {
  store_ = open(dir_);
  std::vector<WriteOp> ops;
  for (int i = 0; i < 3000; i += 2) ops.push_back(put_op(Table::event_ids, scoped_key(7, numbered("id", static_cast<std::uint64_t>(i))), numbered("v", static_cast<std::uint64_t>(i))));
  ASSERT_TRUE(store_->commit(ops).ok());
  std::vector<std::string> keys;
  std::uint64_t x = 99;
  for (int n = 0; n < 2000; ++n) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    keys.push_back(scoped_key(x % 3 ? 7 : 8, numbered("id", (x >> 33) % 3200)));
  }
  keys.push_back(keys.front());
  std::vector<std::optional<std::string>> values;
  ASSERT_TRUE(store_->get_many(Table::event_ids, keys, values).ok());
  ASSERT_EQ(values.size(), keys.size());
  std::size_t found = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(values[i], get(*store_, Table::event_ids, keys[i])) << i;
    found += values[i].has_value();
  }
  EXPECT_GT(found, 400u);
  EXPECT_LT(found, keys.size());
}

// A key asked just past an absent one, or equal to the last key found, is still found: get_many skips
// the lookups of keys that fall in a gap between stored keys, never those of stored keys beside it.
TEST_F(StoreTest, GetManyFindsTheStoredKeysBesideTheGaps) {
  store_ = open(dir_);
  std::vector<std::optional<std::string>> values;
  ASSERT_TRUE(store_->get_many(Table::event_ids, std::vector<std::string>{scoped_key(1, "a"), scoped_key(1, "b")}, values).ok());
  EXPECT_EQ(values, (std::vector<std::optional<std::string>>{std::nullopt, std::nullopt}));  // an empty table

  std::vector<WriteOp> ops;
  for (const char* id : {"b", "d", "e", "h"}) ops.push_back(put_op(Table::event_ids, scoped_key(5, id), id));
  ASSERT_TRUE(store_->commit(ops).ok());
  // Sorted as a batch of one org's ids usually is: gaps, neighbours, repeats, and keys past the last.
  const std::vector<std::string> keys = {scoped_key(4, "z"), scoped_key(5, "a"), scoped_key(5, "b"), scoped_key(5, "b"),
                                         scoped_key(5, "c"), scoped_key(5, "d"), scoped_key(5, "e"), scoped_key(5, "f"),
                                         scoped_key(5, "g"), scoped_key(5, "h"), scoped_key(5, "i"), scoped_key(6, "a")};
  ASSERT_TRUE(store_->get_many(Table::event_ids, keys, values).ok());
  const std::vector<std::optional<std::string>> expected = {std::nullopt, std::nullopt, "b", "b", std::nullopt, "d", "e",
                                                            std::nullopt, std::nullopt, "h", std::nullopt, std::nullopt};
  EXPECT_EQ(values, expected);
  // The same keys in reverse order: each answer stays with its key.
  const std::vector<std::string> reversed(keys.rbegin(), keys.rend());
  ASSERT_TRUE(store_->get_many(Table::event_ids, reversed, values).ok());
  EXPECT_EQ(values, std::vector<std::optional<std::string>>(expected.rbegin(), expected.rend()));
}

// --- atomicity ----------------------------------------------------------------------------------------

TEST_F(StoreTest, OpListWithOneBadOpAppliesNothing) {
  store_ = open(dir_);
  ASSERT_TRUE(put(*store_, Table::orgs, "existing", "before").ok());
  const std::vector<WriteOp> ops = {put_op(Table::journal, u64_key(1), "record"),
                                    put_op(Table::orgs, "existing", "after"), erase_op(Table::orgs, "existing"),
                                    put_op(Table::users, "u", "row"), put_op(Table::users, oversized_key(), "bad")};
  const Status s = store_->commit(ops);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(s.message.empty());
  EXPECT_EQ(get(*store_, Table::journal, u64_key(1)), std::nullopt);
  EXPECT_EQ(get(*store_, Table::orgs, "existing"), "before");
  EXPECT_EQ(get(*store_, Table::users, "u"), std::nullopt);
}

TEST_F(StoreTest, BadOpFirstAppliesNothingEither) {
  store_ = open(dir_);
  const std::vector<WriteOp> ops = {put_op(Table::orgs, std::string(), "empty keys are refused"),
                                    put_op(Table::orgs, "good", "v")};
  EXPECT_FALSE(store_->commit(ops).ok());
  EXPECT_TRUE(scan(*store_, Table::orgs, {}).empty());
}

TEST_F(StoreTest, FailedCommitLeavesTheStoreUsable) {
  store_ = open(dir_);
  ASSERT_FALSE(store_->commit(std::vector<WriteOp>{put_op(Table::orgs, oversized_key(), "bad")}).ok());
  ASSERT_TRUE(put(*store_, Table::orgs, "k", "v").ok());
  EXPECT_EQ(get(*store_, Table::orgs, "k"), "v");
}

TEST_F(StoreTest, FullMapIsAFullErrorAndAppliesNothing) {
  LmdbOptions small;
  small.map_bytes = std::size_t{1} << 20;
  store_ = open(dir_, small);
  ASSERT_NE(store_, nullptr);
  ASSERT_TRUE(put(*store_, Table::orgs, "kept", "v").ok());
  std::vector<WriteOp> ops;
  for (int i = 0; i < 64; ++i) ops.push_back(put_op(Table::journal, u64_key(static_cast<std::uint64_t>(i)), std::string(64 << 10, 'x')));
  const Status s = store_->commit(ops);
  EXPECT_EQ(s.code, Status::Code::full) << s.message;
  EXPECT_TRUE(scan(*store_, Table::journal, {}).empty());
  EXPECT_EQ(get(*store_, Table::orgs, "kept"), "v");
}

// Readers on other threads see each commit whole: two keys written together are never seen apart.
TEST_F(StoreTest, ConcurrentReadersNeverSeeHalfACommit) {
  store_ = open(dir_);
  ASSERT_TRUE(store_->commit(std::vector<WriteOp>{put_op(Table::meta, "a", "0"), put_op(Table::meta, "b", "0")}).ok());
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!done.load()) {
        Rows rows = scan(*store_, Table::meta, {});
        if (rows.size() != 2 || rows[0].second != rows[1].second) torn.fetch_add(1);
        reads.fetch_add(1);
      }
    });
  }
  for (int i = 1; i <= 100; ++i) {
    const std::string v = std::to_string(i);
    ASSERT_TRUE(store_->commit(std::vector<WriteOp>{put_op(Table::meta, "a", v), put_op(Table::meta, "b", v)}).ok());
  }
  done = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(get(*store_, Table::meta, "a"), "100");
}

// --- scan ---------------------------------------------------------------------------------------------

namespace {

const std::vector<WriteOp> scan_rows = {
    put_op(Table::payments, "a1", "1"), put_op(Table::payments, "b1", "2"), put_op(Table::payments, "b2", "3"),
    put_op(Table::payments, "b3", "4"), put_op(Table::payments, "c1", "5"), put_op(Table::orgs, "b9", "other")};

}  // namespace

TEST_F(StoreTest, ScanWithoutPrefixVisitsEveryKeyInOrder) {
  store_ = open(dir_);
  ASSERT_TRUE(store_->commit(scan_rows).ok());
  EXPECT_EQ(scan(*store_, Table::payments, {}),
            (Rows{{"a1", "1"}, {"b1", "2"}, {"b2", "3"}, {"b3", "4"}, {"c1", "5"}}));
}

TEST_F(StoreTest, ScanWithPrefixVisitsOnlyThoseKeys) {
  store_ = open(dir_);
  ASSERT_TRUE(store_->commit(scan_rows).ok());
  EXPECT_EQ(scan(*store_, Table::payments, "b"), (Rows{{"b1", "2"}, {"b2", "3"}, {"b3", "4"}}));
  EXPECT_TRUE(scan(*store_, Table::payments, "d").empty());
  EXPECT_TRUE(scan(*store_, Table::payments, "b4").empty());
}

TEST_F(StoreTest, ScanFromIsInclusive) {
  store_ = open(dir_);
  ASSERT_TRUE(store_->commit(scan_rows).ok());
  EXPECT_EQ(scan(*store_, Table::payments, "b", "b2"), (Rows{{"b2", "3"}, {"b3", "4"}}));
}

TEST_F(StoreTest, ScanFromBetweenKeysStartsAtTheNextKey) {
  store_ = open(dir_);
  ASSERT_TRUE(store_->commit(scan_rows).ok());
  EXPECT_EQ(scan(*store_, Table::payments, "b", "b15"), (Rows{{"b2", "3"}, {"b3", "4"}}));
  EXPECT_EQ(scan(*store_, Table::payments, {}, "b25"), (Rows{{"b3", "4"}, {"c1", "5"}}));
}

TEST_F(StoreTest, ScanFromPastThePrefixRangeVisitsNothing) {
  store_ = open(dir_);
  ASSERT_TRUE(store_->commit(scan_rows).ok());
  EXPECT_TRUE(scan(*store_, Table::payments, "b", "b4").empty());
  EXPECT_TRUE(scan(*store_, Table::payments, "b", "c").empty());
}

// The header: keys starting with `prefix`, from `from` on. A start before the prefix's range does not
// exclude the prefix's keys.
TEST_F(StoreTest, ScanFromBeforeThePrefixRangeStillVisitsThePrefixKeys) {
  store_ = open(dir_);
  ASSERT_TRUE(store_->commit(scan_rows).ok());
  EXPECT_EQ(scan(*store_, Table::payments, "b", "a"), (Rows{{"b1", "2"}, {"b2", "3"}, {"b3", "4"}}));
}

TEST_F(StoreTest, ScanStopsWhenTheVisitorSaysSo) {
  store_ = open(dir_);
  ASSERT_TRUE(store_->commit(scan_rows).ok());
  EXPECT_EQ(scan(*store_, Table::payments, {}, {}, 2), (Rows{{"a1", "1"}, {"b1", "2"}}));
}

TEST_F(StoreTest, ScanOfAnEmptyTableVisitsNothing) {
  store_ = open(dir_);
  ASSERT_TRUE(store_->commit(scan_rows).ok());
  EXPECT_TRUE(scan(*store_, Table::tokens, {}).empty());
  EXPECT_TRUE(scan(*store_, Table::tokens, "b", "b1").empty());
}

TEST_F(StoreTest, BigEndianU64KeysScanInNumericOrder) {
  store_ = open(dir_);
  const std::vector<std::uint64_t> seqs = {256, 1, 255, 70'000, 2, 1ULL << 40};
  std::vector<WriteOp> ops;
  for (std::uint64_t s : seqs) ops.push_back(put_op(Table::journal, u64_key(s), std::to_string(s)));
  ASSERT_TRUE(store_->commit(ops).ok());
  std::vector<std::uint64_t> got;
  for (const auto& [k, v] : scan(*store_, Table::journal, {})) got.push_back(get_u64_be(k));
  EXPECT_EQ(got, (std::vector<std::uint64_t>{1, 2, 255, 256, 70'000, 1ULL << 40}));
  std::vector<std::uint64_t> from_256;
  for (const auto& [k, v] : scan(*store_, Table::journal, {}, u64_key(256))) from_256.push_back(get_u64_be(k));
  EXPECT_EQ(from_256, (std::vector<std::uint64_t>{256, 70'000, 1ULL << 40}));
}

TEST_F(StoreTest, ScopedKeysScanOneScopeOnly) {
  store_ = open(dir_);
  std::vector<WriteOp> ops;
  for (std::uint64_t org : {7u, 8u, 9u}) {
    for (const char* id : {"e1", "e2"}) ops.push_back(put_op(Table::event_ids, scoped_key(org, id), "x"));
  }
  ASSERT_TRUE(store_->commit(ops).ok());
  const Rows rows = scan(*store_, Table::event_ids, u64_key(8));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].first, scoped_key(8, "e1"));
  EXPECT_EQ(rows[1].first, scoped_key(8, "e2"));
}

// --- durability across close, copies ------------------------------------------------------------------

TEST_F(StoreTest, DataSurvivesCloseAndReopen) {
  store_ = open(dir_);
  ASSERT_TRUE(store_->commit(scan_rows).ok());
  ASSERT_TRUE(store_->commit(std::vector<WriteOp>{erase_op(Table::payments, "a1")}).ok());
  reopen();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(scan(*store_, Table::payments, {}), (Rows{{"b1", "2"}, {"b2", "3"}, {"b3", "4"}, {"c1", "5"}}));
  EXPECT_EQ(get(*store_, Table::orgs, "b9"), "other");
}

TEST_F(StoreTest, OpeningAFolderThatCannotExistFails) {
  Status status;
  auto store = open_lmdb_store(root_ + "/no/such/parent/data", LmdbOptions{}, status);
  EXPECT_EQ(store, nullptr);
  EXPECT_FALSE(status.ok());
  EXPECT_FALSE(status.message.empty());
}

TEST_F(StoreTest, ReadOnlyStoreReadsButRefusesCommits) {
  store_ = open(dir_);
  ASSERT_TRUE(store_->commit(scan_rows).ok());
  store_.reset();
  LmdbOptions ro;
  ro.read_only = true;
  store_ = open(dir_, ro);
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(get(*store_, Table::payments, "c1"), "5");
  EXPECT_FALSE(put(*store_, Table::payments, "new", "x").ok());
  EXPECT_EQ(get(*store_, Table::payments, "new"), std::nullopt);
}

TEST_F(StoreTest, CompactedCopyOpensWithTheSameContents) {
  store_ = open(dir_);
  ASSERT_TRUE(store_->commit(scan_rows).ok());
  ASSERT_TRUE(put(*store_, Table::meta, "schema", u64_key(1)).ok());
  const std::string copy_dir = root_ + "/copy";
  ASSERT_TRUE(store_->copy_compacted(copy_dir).ok());
  auto copy = open(copy_dir);
  ASSERT_NE(copy, nullptr);
  for (std::size_t t = 0; t < table_count; ++t) {
    const auto table = static_cast<Table>(t);
    EXPECT_EQ(scan(*copy, table, {}), scan(*store_, table, {})) << table_name(table);
  }
  EXPECT_EQ(scan(*copy, Table::payments, {}).size(), 5u);
}

TEST_F(StoreTest, CompactedCopyIsIndependentOfTheOriginal) {
  store_ = open(dir_);
  ASSERT_TRUE(put(*store_, Table::orgs, "k", "before").ok());
  const std::string copy_dir = root_ + "/copy";
  ASSERT_TRUE(store_->copy_compacted(copy_dir).ok());
  ASSERT_TRUE(put(*store_, Table::orgs, "k", "after").ok());
  auto copy = open(copy_dir);
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(get(*copy, Table::orgs, "k"), "before");
  ASSERT_TRUE(put(*copy, Table::orgs, "k", "copy").ok());
  EXPECT_EQ(get(*store_, Table::orgs, "k"), "after");
}

TEST_F(StoreTest, CompactedCopyLeavesFreedPagesBehind) {
  store_ = open(dir_);
  std::vector<WriteOp> ops;
  for (std::uint64_t i = 0; i < 200; ++i) ops.push_back(put_op(Table::journal, u64_key(i), std::string(16 << 10, 'x')));
  ASSERT_TRUE(store_->commit(ops).ok());
  ops.clear();
  for (std::uint64_t i = 1; i < 200; ++i) ops.push_back(erase_op(Table::journal, u64_key(i)));
  ASSERT_TRUE(store_->commit(ops).ok());
  const std::string copy_dir = root_ + "/copy";
  ASSERT_TRUE(store_->copy_compacted(copy_dir).ok());
  const auto original_bytes = std::filesystem::file_size(dir_ + "/data.mdb");
  const auto copy_bytes = std::filesystem::file_size(copy_dir + "/data.mdb");
  EXPECT_LT(copy_bytes * 10, original_bytes) << copy_bytes << " vs " << original_bytes;
  auto copy = open(copy_dir);
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(scan(*copy, Table::journal, {}).size(), 1u);
}

TEST_F(StoreTest, CompactedCopyRefusesToOverwriteAnExistingStore) {
  store_ = open(dir_);
  ASSERT_TRUE(put(*store_, Table::orgs, "k", "original").ok());
  const std::string other_dir = root_ + "/other";
  {
    auto other = open(other_dir);
    ASSERT_NE(other, nullptr);
    ASSERT_TRUE(put(*other, Table::orgs, "k", "other").ok());
  }
  EXPECT_FALSE(store_->copy_compacted(other_dir).ok());
  auto other = open(other_dir);
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(get(*other, Table::orgs, "k"), "other");
}
