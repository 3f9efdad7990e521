// Goal: accepted event ids are forgotten once older than the idempotency retention, and never
// before. A sweep erases exactly the rows accepted before (its start - retention), walks the whole
// index in bounded slices without skipping or repeating a row, starts at most once per interval, and
// dates rows written before rows carried their time from the journal record they name (or, once
// the journal is trimmed past it, from the audit base's dates: no earlier than the row's own time).
// Real LMDB in a fresh folder under /tmp.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "config/limits.hpp"
#include "domain/time.hpp"
#include "persistence/codec.hpp"
#include "persistence/id_purge.hpp"
#include "persistence/keys.hpp"
#include "persistence/store.hpp"
#include "tests/support/temp_dir.hpp"

using namespace canopy::persistence;
using canopy::domain::ChainHop;
using canopy::domain::ChargeBatch;
using canopy::domain::ChargeEvent;
using canopy::domain::OrgId;
using canopy::domain::Record;
using canopy::domain::Timestamp;

namespace {

constexpr Timestamp day = canopy::domain::seconds_per_day;
constexpr Timestamp retention = Timestamp{canopy::limits::idempotency_retention_days_min} * day;
constexpr Timestamp interval = canopy::limits::id_purge_interval_seconds;
constexpr Timestamp t0 = 1'700'000'000;

class IdPurgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status status;
    store_ = open_lmdb_store(dir_.str("data"), {}, status);
    ASSERT_TRUE(status.ok()) << status.message;
  }

  static std::string id_key(std::uint64_t org, int n) {
    std::string id = "evt_";
    id += std::to_string(n);
    return scoped_key(org, id);
  }

  void accept(std::uint64_t org, int n, Timestamp at) {
    commit({WriteOp{Table::event_ids, id_key(org, n), encode(EventIdRow{next_seq_++, OrgId{org}, at})}});
  }

  // A row as written before rows said when: the seq of the record that accepted it and the payer
  // only (16 bytes).
  void accept_undated(std::uint64_t org, int n, std::uint64_t seq) {
    std::string value;
    put_u64_be(value, seq);
    put_u64_be(value, org);
    commit({WriteOp{Table::event_ids, id_key(org, n), value}});
  }

  void commit(std::vector<WriteOp> ops) { ASSERT_TRUE(store_->commit(ops).ok()); }

  bool known(std::uint64_t org, int n) {
    std::string value;
    return store_->get(Table::event_ids, id_key(org, n), value).ok();
  }

  std::size_t rows() {
    std::size_t count = 0;
    EXPECT_TRUE(store_->scan(Table::event_ids, {}, {}, [&](std::string_view, std::string_view) {
      ++count;
      return true;
    }).ok());
    return count;
  }

  // One step, committed as the writer commits it (so every earlier sweep's erases are committed).
  // Returns the rows erased.
  std::size_t step(IdPurge& purge, Timestamp now, std::size_t max_rows) {
    WriteOps ops;
    const std::size_t erased = purge.step(now, purge.sweeps_finished(), max_rows, ops);
    EXPECT_EQ(ops.size(), erased);
    if (!ops.empty()) {
      EXPECT_TRUE(store_->commit(ops.span()).ok());
    }
    return erased;
  }

  canopy::test::TempDir dir_;  // outlives the store (members are destroyed in reverse order)
  std::unique_ptr<Store> store_;
  std::uint64_t next_seq_ = 1;
};

TEST_F(IdPurgeTest, ErasesExactlyTheIdsAcceptedBeforeTheRetention) {
  accept(1, 1, t0 - retention - 1);  // one second too old
  accept(1, 2, t0 - retention);      // exactly at the edge: kept
  accept(2, 1, t0 - 3 * retention);
  accept(2, 2, t0);
  IdPurge purge(*store_, retention, interval);
  EXPECT_EQ(step(purge, t0, 100), 2u);
  EXPECT_FALSE(known(1, 1));
  EXPECT_TRUE(known(1, 2));
  EXPECT_FALSE(known(2, 1));
  EXPECT_TRUE(known(2, 2));
  EXPECT_EQ(purge.sweeps_finished(), 1u);
}

TEST_F(IdPurgeTest, ASweepWalksTheWholeIndexInBoundedSlicesWithoutSkippingARow) {
  // 50 orgs x 20 ids; every third one old. Slices of 7 rows do not divide anything evenly.
  std::size_t old = 0;
  for (std::uint64_t org = 1; org <= 50; ++org) {
    for (int n = 0; n < 20; ++n) {
      const bool expired = (org * 20 + static_cast<std::uint64_t>(n)) % 3 == 0;
      old += expired;
      accept(org, n, expired ? t0 - retention - day : t0 - day);
    }
  }
  IdPurge purge(*store_, retention, interval);
  std::size_t erased = 0;
  std::size_t steps = 0;
  do {
    const std::size_t now_erased = step(purge, t0, 7);
    EXPECT_LE(now_erased, 7u);
    erased += now_erased;
    ++steps;
  } while (purge.sweeps_finished() == 0 && steps < 1000);
  EXPECT_EQ(purge.sweeps_finished(), 1u);
  EXPECT_EQ(erased, old);
  EXPECT_EQ(rows(), 1000 - old);
  EXPECT_GE(steps, 1000u / 7);  // bounded: no step examined more than its slice
  for (std::uint64_t org = 1; org <= 50; ++org) {
    for (int n = 0; n < 20; ++n) {
      EXPECT_EQ(known(org, n), (org * 20 + static_cast<std::uint64_t>(n)) % 3 != 0) << org << " " << n;
    }
  }
}

TEST_F(IdPurgeTest, TheCutoffIsFixedWhenASweepStartsSoRowsThatExpireDuringItWaitForTheNext) {
  for (int n = 0; n < 10; ++n) accept(5, n, t0 - retention - day);
  IdPurge purge(*store_, retention, interval);
  EXPECT_EQ(step(purge, t0, 4), 4u);  // the sweep starts at t0: its cutoff is t0 - retention
  accept(9, 0, t0 - retention + 5);   // ahead of the sweep; expires 5 s into it
  accept(1, 0, t0 - retention - day); // behind the sweep: already passed
  std::size_t erased = 4;
  while (purge.sweeps_finished() == 0) erased += step(purge, t0 + 20, 4);  // later steps, later clock
  EXPECT_EQ(erased, 10u);
  EXPECT_TRUE(known(9, 0)) << "a row newer than the sweep's cutoff was erased by it";
  EXPECT_TRUE(known(1, 0));
  // The next sweep (an interval later) takes both.
  EXPECT_EQ(step(purge, t0 + interval, 100), 2u);
  EXPECT_EQ(rows(), 0u);
}

TEST_F(IdPurgeTest, ASweepStartsAtMostOncePerInterval) {
  IdPurge purge(*store_, retention, interval);
  EXPECT_TRUE(purge.due(t0, 0));
  step(purge, t0, 100);  // an empty index: the sweep ends at once
  EXPECT_EQ(purge.sweeps_finished(), 1u);
  EXPECT_FALSE(purge.due(t0 + interval - 1, 1));
  accept(3, 1, t0 - retention);  // expires one second later
  EXPECT_EQ(step(purge, t0 + interval - 1, 100), 0u);  // no sweep yet
  EXPECT_TRUE(known(3, 1));
  EXPECT_TRUE(purge.due(t0 + interval, 1));
  EXPECT_EQ(step(purge, t0 + interval, 100), 1u);
  EXPECT_FALSE(known(3, 1));
  EXPECT_EQ(purge.sweeps_finished(), 2u);
}

TEST_F(IdPurgeTest, ANewSweepWaitsUntilThePreviousSweepsErasesAreCommitted) {
  // The writer hands a sweep's erases to the state committer; the next sweep reads the committed
  // index. Started before the erases land, it would find the same rows expired and count them again.
  accept(4, 1, t0 - retention - day);
  IdPurge purge(*store_, retention, interval);
  WriteOps first;
  EXPECT_EQ(purge.step(t0, 0, 100, first), 1u);
  EXPECT_EQ(purge.sweeps_finished(), 1u);  // its erase is not committed yet

  // An interval later (a manual clock moved twice in a row): not due while the erase is in flight.
  EXPECT_FALSE(purge.due(t0 + interval, 0));
  WriteOps early;
  EXPECT_EQ(purge.step(t0 + interval, 0, 100, early), 0u);
  EXPECT_TRUE(early.empty()) << "a sweep started over an uncommitted erase";
  EXPECT_EQ(purge.sweeps_finished(), 1u);

  // Once the committer has committed it, the next sweep starts and finds nothing left to forget.
  ASSERT_TRUE(store_->commit(first.span()).ok());
  EXPECT_TRUE(purge.due(t0 + interval, 1));
  WriteOps second;
  EXPECT_EQ(purge.step(t0 + interval, 1, 100, second), 0u);
  EXPECT_TRUE(second.empty());
  EXPECT_EQ(purge.sweeps_finished(), 2u);
  EXPECT_FALSE(known(4, 1));
}

TEST_F(IdPurgeTest, RowsWithoutATimeAreDatedByTheirJournalRecord) {
  // Rows written before rows said when, and the charges that accepted them.
  const auto legacy = [&](std::uint64_t org, int n, std::uint64_t seq, Timestamp at) {
    ChargeBatch batch;
    batch.chain = {ChainHop{OrgId{org}, 0}};
    batch.at = at;
    batch.events = {ChargeEvent{"x", "assistants.reply", 1, 1, at}};
    commit({WriteOp{Table::journal, u64_key(seq), encode(Record{batch})}});
    accept_undated(org, n, seq);
  };
  legacy(1, 1, 1, t0 - retention - 1);
  legacy(1, 2, 2, t0 - 1);
  accept_undated(1, 3, 99);  // names a journal record that is not there: kept, never guessed at
  IdPurge purge(*store_, retention, interval);
  EXPECT_EQ(step(purge, t0, 100), 1u);
  EXPECT_FALSE(known(1, 1));
  EXPECT_TRUE(known(1, 2));
  EXPECT_TRUE(known(1, 3));
}

TEST_F(IdPurgeTest, RowsWithoutATimeWhoseRecordWasTrimmedAreDatedByTheAuditBase) {
  // The audit base holds records up to 10 and the journal was trimmed behind it (journal_trim.hpp):
  // the charges up to record 4 were accepted by `old`, up to 9 by `recent`, and the latest by
  // `latest` (audit_base.hpp).
  const Timestamp old = t0 - retention - 2 * day;
  const Timestamp recent = t0 - retention + day;
  const Timestamp latest = t0;
  const auto at = [](Timestamp t) { return u64_key(static_cast<std::uint64_t>(t)); };
  commit({WriteOp{Table::audit_meta, std::string(audit_base_seq_key), u64_key(10)},
          WriteOp{Table::audit_meta, std::string(audit_charged_at_key), at(latest)},
          WriteOp{Table::audit_dates, u64_key(4), at(old)}, WriteOp{Table::audit_dates, u64_key(9), at(recent)}});
  accept_undated(1, 1, 3);   // by `old`: past the retention
  accept_undated(1, 2, 6);   // by `recent`: within it
  accept_undated(1, 3, 10);  // after the last date: by `latest`
  accept_undated(1, 4, 12);  // past the base, and not in the journal: kept, never guessed at
  IdPurge purge(*store_, retention, interval);
  EXPECT_EQ(step(purge, t0, 100), 1u);
  EXPECT_FALSE(known(1, 1));
  EXPECT_TRUE(known(1, 2));
  EXPECT_TRUE(known(1, 3));
  EXPECT_TRUE(known(1, 4));
  IdPurge later(*store_, retention, interval);
  EXPECT_EQ(step(later, t0 + day + 1, 100), 1u);  // `recent` is now past the retention
  EXPECT_FALSE(known(1, 2));
  EXPECT_TRUE(known(1, 3));
}

TEST(EventIdRowCodec, RoundTripsAndReadsRowsWrittenBeforeTheTime) {
  const auto bytes = encode(EventIdRow{42, OrgId{7}, t0});
  const auto row = decode_event_id_row(bytes);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->seq, 42u);
  EXPECT_EQ(row->payer, OrgId{7});
  EXPECT_EQ(row->at, t0);
  const auto legacy = decode_event_id_row(std::string_view(bytes).substr(0, 16));
  ASSERT_TRUE(legacy.has_value());
  EXPECT_EQ(legacy->payer, OrgId{7});
  EXPECT_FALSE(legacy->at.has_value());
  EXPECT_FALSE(decode_event_id_row(std::string_view(bytes).substr(0, 20)).has_value());
}

}  // namespace
