// WriteOps: the ops of one commit, whose buffers outlive it (persistence/write_ops.hpp).
#include "persistence/write_ops.hpp"

#include <gtest/gtest.h>

#include <string>

namespace canopy::persistence {
namespace {

TEST(WriteOps, HoldsTheOpsAddedSinceTheLastClearInOrder) {
  WriteOps ops;
  EXPECT_TRUE(ops.empty());
  ops.add(Table::event_ids).key.assign(3, 'a');
  WriteOp built;
  built.table = Table::usage;
  built.key.assign(3, 'b');
  built.value.assign(1, '1');
  ops.push_back(std::move(built));
  ops.add(Table::tokens, true).key.assign(3, 'c');
  ASSERT_EQ(ops.size(), 3u);
  EXPECT_EQ(ops.span().size(), 3u);
  EXPECT_EQ(ops[0].table, Table::event_ids);
  EXPECT_EQ(ops[1].key, "bbb");
  EXPECT_EQ(ops[1].value, "1");
  EXPECT_TRUE(ops[2].erase);
  EXPECT_EQ(ops.end() - ops.begin(), 3);

  ops.clear();
  EXPECT_TRUE(ops.empty());
  EXPECT_TRUE(ops.span().empty());
}

TEST(WriteOps, AnOpAddedAfterAClearStartsEmptyAndReusesTheBuffersOfTheOpBefore) {
  WriteOps ops;
  WriteOp& first = ops.add(Table::usage, true);
  first.key.assign(100, 'k');  // past any small-string buffer
  first.value.assign(200, 'v');
  const char* key_buffer = first.key.data();
  const char* value_buffer = first.value.data();
  ops.clear();

  WriteOp& again = ops.add(Table::event_ids);
  EXPECT_EQ(again.table, Table::event_ids);
  EXPECT_FALSE(again.erase);
  EXPECT_TRUE(again.key.empty());
  EXPECT_TRUE(again.value.empty());
  again.key.assign(50, 'x');
  again.value.assign(60, 'y');
  EXPECT_EQ(again.key.data(), key_buffer) << "the key was reallocated";
  EXPECT_EQ(again.value.data(), value_buffer) << "the value was reallocated";
  EXPECT_EQ(ops.size(), 1u);
}

TEST(WriteOps, AfterAHugeCommitOnlyTheBoundedNumberOfOpsIsKept) {
  WriteOps ops;
  for (std::size_t i = 0; i < limits::write_ops_kept_max + 10; ++i) ops.add(Table::event_ids).key.assign(40, 'k');
  EXPECT_EQ(ops.kept(), limits::write_ops_kept_max + 10);
  ops.clear();
  EXPECT_EQ(ops.kept(), limits::write_ops_kept_max);
  ops.add(Table::usage);
  ops.clear();
  EXPECT_EQ(ops.kept(), limits::write_ops_kept_max) << "a commit within the bound keeps everything";
}

}  // namespace
}  // namespace canopy::persistence
