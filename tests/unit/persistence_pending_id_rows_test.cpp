// PendingIdRows: event-id index rows waiting for a checkpoint (persistence/pending_id_rows.hpp).
#include "persistence/pending_id_rows.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/limits.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"
#include "tests/support/commit_gate.hpp"

namespace canopy::persistence {
namespace {

using namespace canopy::domain;
using namespace std::chrono_literals;
using Clock = PendingIdRows::Clock;

const Clock::time_point t0 = Clock::now();

ChargeBatch batch(OrgId origin, OrgId payer, std::vector<std::string> ids, Timestamp at = 1'790'000'000) {
  ChargeBatch b;
  b.chain = {ChainHop{origin, 1}};
  if (payer != origin) b.chain.push_back(ChainHop{payer, 1});
  b.at = at;
  std::vector<ChargeEvent> events;
  for (auto& id : ids) events.push_back(ChargeEvent{std::move(id), "assistants.reply", 1, 10, at});
  b.events = std::move(events);
  return b;
}

std::vector<std::string> keys(const WriteOps& ops) {
  std::vector<std::string> out;
  for (const auto& op : ops) out.push_back(op.key);
  return out;
}

TEST(PendingIdRows, RowsWaitUntilTheirIntervalIsUpAndAreThenTheIndexRowsOfTheirRecord) {
  PendingIdRows rows;
  rows.add(5, batch(OrgId{7}, OrgId{3}, {"a", "b"}, 1'790'000'123), t0);
  EXPECT_FALSE(rows.due(t0 - 1ms)) << "pending since t0: not due before";
  EXPECT_TRUE(rows.due(t0));
  EXPECT_EQ(rows.size(), 2u);
  ASSERT_TRUE(rows.begin());
  rows.wait_sorted();
  WriteOps ops;
  EXPECT_EQ(rows.write_slice(ops, 100), 2u);
  EXPECT_EQ(keys(ops), (std::vector<std::string>{scoped_key(7, "a"), scoped_key(7, "b")}));
  for (const auto& op : ops) {
    EXPECT_EQ(op.table, Table::event_ids);
    EXPECT_FALSE(op.erase);
    EXPECT_EQ(op.value, encode(EventIdRow{5, OrgId{3}, 1'790'000'123})) << "the row a lookup decodes";
  }
  EXPECT_EQ(rows.size(), 0u);
  EXPECT_FALSE(rows.due(t0 + 1h)) << "nothing left";
  EXPECT_FALSE(rows.begin());
}

// Slices of a checkpoint cover narrow ranges of the index: its rows are written in key order (org,
// then id bytes, a longer id after its prefix), whatever order they were accepted in.
TEST(PendingIdRows, ACheckpointWritesItsRowsInKeyOrder) {
  PendingIdRows rows;
  rows.add(1, batch(OrgId{9}, OrgId{9}, {"zz", "evt_00000002", "evt_0000000"}), t0);
  rows.add(2, batch(OrgId{2}, OrgId{2}, {"b"}), t0);
  rows.add(3, batch(OrgId{9}, OrgId{9}, {"evt_00000001", "a"}), t0);
  ASSERT_TRUE(rows.begin());
  rows.wait_sorted();
  WriteOps ops;
  EXPECT_EQ(rows.write_slice(ops, 100), 6u);
  EXPECT_EQ(keys(ops), (std::vector<std::string>{scoped_key(2, "b"), scoped_key(9, "a"), scoped_key(9, "evt_0000000"),
                                                 scoped_key(9, "evt_00000001"), scoped_key(9, "evt_00000002"),
                                                 scoped_key(9, "zz")}));
  for (const auto& op : ops) {
    const auto row = decode_event_id_row(op.value);
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(row->seq, op.key == scoped_key(2, "b") ? 2u : (op.key == scoped_key(9, "a") ||
                                                             op.key == scoped_key(9, "evt_00000001") ? 3u : 1u))
        << "each row keeps its own record's value";
  }
}

// The sort runs on a thread of its own: while it does, the writer goes on (begin() returns, rows are
// added for the next checkpoint) and the checkpoint writes nothing and says it is not due, so an idle
// writer does not spin on it; its ids do not count as indexed until written.
// Rows whose sorts wait at a gate, held until released (at the latest when the test ends, before
// `rows` joins its sorter, whatever the test did).
struct HeldSorts {
  canopy::test::CommitGate gate;
  std::atomic<int> sorted_calls{0};
  PendingIdRows rows{[this] { gate.wait(); }};
  HeldSorts() {
    gate.hold();
    rows.set_sorted_listener([this] { ++sorted_calls; });
  }
  ~HeldSorts() { gate.release(); }
};

TEST(PendingIdRows, ACheckpointIsSortedOffTheWritersThreadAndWrittenOnceSorted) {
  HeldSorts held;
  canopy::test::CommitGate& gate = held.gate;
  PendingIdRows& rows = held.rows;

  rows.add(1, batch(OrgId{9}, OrgId{9}, {"c", "a"}), t0);
  rows.add(2, batch(OrgId{4}, OrgId{4}, {"b"}), t0);
  ASSERT_TRUE(rows.begin()) << "begun, though its sort is held";
  while (gate.arrived() == 0) std::this_thread::yield();  // the sorter has it
  EXPECT_FALSE(rows.due(t0 + 1h)) << "nothing to write while it sorts";
  WriteOps ops;
  EXPECT_EQ(rows.write_slice(ops, 100), 0u);
  EXPECT_TRUE(ops.empty());
  EXPECT_TRUE(rows.begin()) << "still the same checkpoint in progress";
  rows.add(3, batch(OrgId{1}, OrgId{1}, {"z"}), t0 + 1s);  // the next checkpoint's
  EXPECT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows.indexed_through(3), 0u);

  gate.release();
  rows.wait_sorted();
  EXPECT_TRUE(rows.due(t0 - 1h)) << "sorted: its rows are due whatever the clock";
  const auto deadline = Clock::now() + 10s;  // a bound for a broken listener, not a timing check
  while (held.sorted_calls.load() == 0 && Clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(held.sorted_calls.load(), 1) << "the writer is told, so an idle one need not wait for its poll";
  EXPECT_EQ(rows.write_slice(ops, 100), 3u);
  EXPECT_EQ(keys(ops), (std::vector<std::string>{scoped_key(4, "b"), scoped_key(9, "a"), scoped_key(9, "c")}));
  EXPECT_EQ(rows.indexed_through(3), 2u);
  ops.clear();
  rows.write_all(ops);
  EXPECT_EQ(keys(ops), std::vector<std::string>{scoped_key(1, "z")});
  EXPECT_EQ(rows.indexed_through(3), 3u);
}

// Recovery and shutdown write every row at once: write_all waits for a sort in progress.
TEST(PendingIdRows, WriteAllWaitsForTheSortInProgress) {
  HeldSorts held;
  canopy::test::CommitGate& gate = held.gate;
  PendingIdRows& rows = held.rows;
  rows.add(1, batch(OrgId{2}, OrgId{2}, {"y", "x"}), t0);
  ASSERT_TRUE(rows.begin());
  std::thread opener([&gate] {
    while (gate.arrived() == 0) std::this_thread::yield();
    gate.release();
  });
  WriteOps ops;
  rows.write_all(ops);
  opener.join();
  EXPECT_EQ(keys(ops), (std::vector<std::string>{scoped_key(2, "x"), scoped_key(2, "y")}));
  EXPECT_EQ(rows.size(), 0u);
}

TEST(PendingIdRows, ARecordCountsAsIndexedOnlyOnceEveryRowOfItsCheckpointIsWritten) {
  PendingIdRows rows;
  EXPECT_EQ(rows.indexed_through(4), 4u) << "nothing pending: everything up to the last record";
  rows.add(5, batch(OrgId{1}, OrgId{1}, {"e1", "e2"}), t0);
  rows.add(6, batch(OrgId{2}, OrgId{1}, {"e3", "e4", "e5"}), t0);
  EXPECT_EQ(rows.indexed_through(7), 4u);
  ASSERT_TRUE(rows.begin());
  rows.wait_sorted();
  rows.add(8, batch(OrgId{1}, OrgId{1}, {"e6"}), t0 + 1s);  // after the checkpoint began: the next one's
  WriteOps ops;
  EXPECT_EQ(rows.write_slice(ops, 3), 3u);  // record 5 and part of 6
  EXPECT_EQ(rows.indexed_through(8), 4u) << "record 6 is split: neither counts before the slice ends";
  ops.clear();
  EXPECT_EQ(rows.write_slice(ops, 3), 2u);
  EXPECT_EQ(rows.indexed_through(8), 7u) << "record 8 waits for the next checkpoint";
  EXPECT_FALSE(rows.due(t0 + 500ms));
  EXPECT_TRUE(rows.due(t0 + 1s));
  ASSERT_TRUE(rows.begin());
  rows.wait_sorted();
  ops.clear();
  EXPECT_EQ(rows.write_slice(ops, 3), 1u);
  EXPECT_EQ(keys(ops), std::vector<std::string>{scoped_key(1, "e6")});
  EXPECT_EQ(rows.indexed_through(9), 9u);
}

TEST(PendingIdRows, WriteAllTakesTheCheckpointInProgressAndEveryRowBehindIt) {
  PendingIdRows rows;
  rows.add(1, batch(OrgId{1}, OrgId{1}, {"a", "b", "c"}), t0);
  ASSERT_TRUE(rows.begin());
  rows.wait_sorted();
  WriteOps ops;
  rows.write_slice(ops, 1);
  rows.add(2, batch(OrgId{1}, OrgId{1}, {"d"}), t0);
  rows.write_all(ops);
  EXPECT_EQ(keys(ops), (std::vector<std::string>{scoped_key(1, "a"), scoped_key(1, "b"), scoped_key(1, "c"),
                                                 scoped_key(1, "d")}));
  EXPECT_EQ(rows.size(), 0u);
  EXPECT_EQ(rows.indexed_through(2), 2u);
}

// Past limits::pending_id_rows_max waiting rows a checkpoint begins at once, and one in progress is
// finished in a single commit, so a writer that falls behind a burst catches up instead of holding it.
TEST(PendingIdRows, ABurstPastTheBoundIsDueAtOnceAndWrittenWhole) {
  constexpr std::size_t per_record = 1000;
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < per_record; ++i) ids.push_back("evt_" + std::to_string(i));
  const ChargeBatch b = batch(OrgId{9}, OrgId{9}, ids);
  PendingIdRows rows;
  std::uint64_t seq = 0;
  rows.add(++seq, b, t0);
  ASSERT_TRUE(rows.begin());
  rows.wait_sorted();  // a checkpoint of one record in progress
  while (rows.size() <= limits::pending_id_rows_max + per_record) rows.add(++seq, b, t0);
  WriteOps ops;
  EXPECT_EQ(rows.write_slice(ops, 10), per_record) << "the checkpoint in progress, whole";
  EXPECT_TRUE(rows.due(t0 - 1h)) << "none in progress now: due by count, whatever the clock";
  const std::size_t checkpoint = rows.size();
  ASSERT_TRUE(rows.begin());
  rows.wait_sorted();
  ops.clear();
  EXPECT_EQ(rows.write_slice(ops, 10), checkpoint / limits::checkpoint_id_slices_min)
      << "the next one is back to slices (nothing waits behind it), each a fixed share of it, not 10 rows";
  EXPECT_EQ(rows.indexed_through(seq), 1u);
}

}  // namespace
}  // namespace canopy::persistence
