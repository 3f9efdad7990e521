// Goal: the state committer (actors/state_committer.hpp) commits the batches it is given in the order
// given, also when it takes several into one commit; publishes a batch's progress only once the batch
// is committed; makes the writer wait past its bound of waiting batches; and SettledStore makes a read
// of the state part wait for the batches named, and only then. A real LMDB store underneath; its
// state-part commits can be held back to decide what is in flight (a fault a real store cannot make
// on demand).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "actors/state_committer.hpp"
#include "config/limits.hpp"
#include "persistence/store.hpp"
#include "tests/support/commit_gate.hpp"
#include "tests/support/temp_dir.hpp"

namespace canopy::actors {
namespace {

using persistence::Table;
using persistence::WriteOps;

// LMDB, with commits that wait while held.
class HeldStore final : public persistence::Store {
 public:
  explicit HeldStore(std::unique_ptr<persistence::Store> inner) : inner_(std::move(inner)) {}
  persistence::Status commit(std::span<const persistence::WriteOp> ops) override {
    gate.wait();
    return inner_->commit(ops);
  }
  persistence::Status get(Table t, std::string_view k, std::string& v) const override { return inner_->get(t, k, v); }
  persistence::Status scan(Table t, std::string_view p, std::string_view f,
                           const persistence::ScanVisitor& visit) const override {
    return inner_->scan(t, p, f, visit);
  }
  persistence::Status copy_compacted(const std::string& dir) const override { return inner_->copy_compacted(dir); }

  test::CommitGate gate;

 private:
  std::unique_ptr<persistence::Store> inner_;
};

class StateCommitterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    persistence::Status status;
    auto lmdb = persistence::open_lmdb_store(dir_.str("data"), {}, status);
    ASSERT_TRUE(lmdb) << status.message;
    store_ = std::make_unique<HeldStore>(std::move(lmdb));
    committer_ = std::make_unique<StateCommitter>(*store_, stats_, [this](std::uint64_t n) { notified_ = n; });
  }
  void TearDown() override {
    if (store_) store_->gate.release();
    committer_.reset();
    store_.reset();
  }

  std::uint64_t submit(std::vector<persistence::WriteOp> ops, std::uint64_t ids_through = 0, bool notify = false) {
    WriteOps batch;
    for (auto& op : ops) batch.push_back(std::move(op));
    return committer_->submit(batch, StateCommitter::Progress{ids_through, 0, 0, 0}, notify);
  }
  std::optional<std::string> get(std::string_view key) {
    std::string value;
    if (!store_->get(Table::orgs, key, value).ok()) return std::nullopt;
    return value;
  }
  // Until the committer has taken what waits and is inside the store's commit (held).
  void until_committing(int commits) {
    for (int i = 0; i < 500 && store_->gate.arrived() < commits; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_GE(store_->gate.arrived(), commits);
  }

  test::TempDir dir_;
  WriterStats stats_;
  std::unique_ptr<HeldStore> store_;
  std::unique_ptr<StateCommitter> committer_;
  std::atomic<std::uint64_t> notified_{0};
};

persistence::WriteOp put(std::string key, std::string value) { return {Table::orgs, std::move(key), std::move(value)}; }
persistence::WriteOp erase(std::string key) { return {Table::orgs, std::move(key), {}, true}; }

TEST_F(StateCommitterTest, BatchesTakenIntoOneCommitEndAsIfCommittedInTheOrderSubmitted) {
  store_->gate.hold();
  submit({put("first", "x")});
  until_committing(1);  // the first alone; the next three wait and go in one commit
  submit({put("k", "a"), put("gone", "1")});
  submit({erase("k"), erase("gone")});
  submit({put("k", "b")});
  store_->gate.release();
  committer_->wait_idle();
  EXPECT_EQ(get("k"), "b") << "the put after the erase wins";
  EXPECT_EQ(get("gone"), std::nullopt) << "the erase after the put wins";
  EXPECT_EQ(store_->gate.arrived(), 2) << "the three waiting batches in one commit";
}

// A journal commit that meets a state commit's fsync waits for it: one commit takes waiting batches
// only up to limits::state_commit_ops_max ops.
TEST_F(StateCommitterTest, ACommitTakesWaitingBatchesOnlyUpToItsBoundOnOps) {
  store_->gate.hold();
  submit({put("first", "x")});
  until_committing(1);
  const std::size_t half = limits::state_commit_ops_max / 2 + 1;  // two of these do not fit in one commit
  for (int b = 0; b < 3; ++b) {
    std::vector<persistence::WriteOp> ops;
    for (std::size_t i = 0; i < half; ++i) {
      std::string key = std::to_string(b);
      key.append("-").append(std::to_string(i));
      ops.push_back(put(std::move(key), "v"));
    }
    submit(std::move(ops));
  }
  store_->gate.release();
  committer_->wait_idle();
  EXPECT_EQ(store_->gate.arrived(), 4) << "each big batch in a commit of its own";
  EXPECT_EQ(get("2-0"), "v");
}

TEST_F(StateCommitterTest, TheIndexProgressIsPublishedOnlyOnceItsBatchIsCommitted) {
  store_->gate.hold();
  submit({put("row", "x")}, /*ids_through=*/42);
  until_committing(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(stats_.ids_indexed_seq.load(), 0u) << "the rows are not durable yet";
  store_->gate.release();
  committer_->wait_idle();
  EXPECT_EQ(stats_.ids_indexed_seq.load(), 42u);
  EXPECT_EQ(get("row"), "x");
}

TEST_F(StateCommitterTest, ABatchWithoutOpsStillPublishesItsProgressInOrder) {
  store_->gate.hold();
  submit({put("row", "x")}, 5);
  until_committing(1);
  submit({}, 9);  // nothing to write, but it may only be said once the batch before it is durable
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(stats_.ids_indexed_seq.load(), 0u);
  store_->gate.release();
  committer_->wait_idle();
  EXPECT_EQ(stats_.ids_indexed_seq.load(), 9u);
}

TEST_F(StateCommitterTest, NotifyNamesTheLastCommittedBatchThatAskedForIt) {
  submit({put("a", "1")}, 0, /*notify=*/true);
  const auto second = submit({put("b", "2")}, 0, true);
  submit({put("c", "3")});
  committer_->wait_idle();
  EXPECT_EQ(notified_.load(), second);
}

TEST_F(StateCommitterTest, SubmitWaitsOncePastTheBoundOfWaitingBatches) {
  store_->gate.hold();
  submit({put("first", "x")});
  until_committing(1);
  for (std::size_t i = 0; i < limits::state_batches_waiting_max; ++i) {
    std::string key = "k";
    key.append(std::to_string(i));  // (not "k" + ...: GCC 12's -Wrestrict false positive)
    submit({put(std::move(key), "v")});
  }
  auto one_more = std::async(std::launch::async, [this] { return submit({put("over", "v")}); });
  EXPECT_EQ(one_more.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout)
      << "the writer must wait for the committer";
  store_->gate.release();
  EXPECT_EQ(one_more.get(), limits::state_batches_waiting_max + 2);
  committer_->wait_idle();
  EXPECT_EQ(get("over"), "v");
}

TEST_F(StateCommitterTest, ItsEndCommitsWhatStillWaits) {
  submit({put("late", "v")});
  committer_.reset();
  EXPECT_EQ(get("late"), "v");
}

TEST_F(StateCommitterTest, ASettledReadWaitsForTheBatchesNamedAndOnlyThen) {
  SettledStore settled(*store_, *committer_);
  store_->gate.hold();
  const auto batch = submit({put("org", "new")});
  until_committing(1);
  std::string value;
  EXPECT_TRUE(settled.get(Table::orgs, "org", value).is_not_found())
      << "nothing named yet: a read does not wait (and sees the store as committed)";
  EXPECT_TRUE(settled.get(Table::journal, "x", value).is_not_found()) << "journal-part reads never wait";
  settled.settle_through(batch);  // the writer forgot what this batch wrote
  auto read = std::async(std::launch::async, [&] {
    std::string v;
    return settled.get(Table::orgs, "org", v).ok() ? v : std::string("absent");
  });
  EXPECT_EQ(read.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  store_->gate.release();
  EXPECT_EQ(read.get(), "new");
}

}  // namespace
}  // namespace canopy::actors
