// Goal: what the journal says is what recovery rebuilds. A journal written the way the persistence
// writer writes it (each commit: the records under u64 seq keys plus the materializer's side rows;
// org state only at some checkpoints) recovers, after the store is closed at any commit and reopened,
// to exactly the orgs a plain in-memory fold of the same records through domain::apply gives. Recovery
// is idempotent. The offline audit finds nothing wrong in a clean store and does find tampering:
// a changed stored org, a missing or extra org row, a gap or damage in the journal.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "config/limits.hpp"
#include "domain/apply.hpp"
#include "domain/time.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"
#include "persistence/materializer.hpp"
#include "persistence/recovery.hpp"
#include "persistence/store.hpp"
#include "tests/unit/journal_scenario.hpp"

using namespace canopy::domain;
using namespace canopy::persistence;
using namespace canopy::test;

namespace {

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/canopy_recovery_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/data";
  }

  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(root_);
  }

  std::unique_ptr<Store> open_store(const std::string& dir) {
    Status status;
    auto store = open_lmdb_store(dir, LmdbOptions{}, status);
    EXPECT_TRUE(status.ok()) << status.message;
    return store;
  }

  // Opens, recovers (as the server does at start) and writes the first `through` commits of the
  // scenario, then closes the store: the process is gone right after commit `through`.
  void write_and_crash(const std::string& dir, std::size_t through) {
    auto store = open_store(dir);
    ASSERT_NE(store, nullptr);
    RecoveryResult start;
    ASSERT_TRUE(recover(*store, start).ok());
    ASSERT_EQ(start.last_seq, 0u);
    JournalWriter writer(*store, start.last_seq);
    const auto commits = scenario();
    for (std::size_t i = 0; i < through; ++i) ASSERT_TRUE(writer.commit(commits[i], checkpoints_after(i)).ok());
  }

  void reopen() {
    store_.reset();
    store_ = open_store(dir_);
    ASSERT_NE(store_, nullptr);
  }

  void write_scenario_and_reopen() {
    write_and_crash(dir_, scenario().size());
    reopen();
  }

  void expect_orgs_equal_fold(const Store& store, std::size_t through) {
    for (const auto& [id, want] : reference_fold(scenario(), through)) {
      const auto got = load_org(store, OrgId{id});
      ASSERT_TRUE(got.has_value()) << to_string(OrgId{id}) << " after " << through << " commits";
      EXPECT_EQ(*got, want) << "after " << through << " commits";
    }
  }

  std::vector<std::string> audit_problems(const Store& store) {
    AuditResult result;
    const Status s = audit(store, result);
    EXPECT_TRUE(s.ok()) << s.message;
    return result.problems;
  }

  std::uint64_t checkpoint_seq(const Store& store) {
    std::string bytes;
    if (!store.get(Table::checkpoint, checkpoint_mark_key, bytes).ok()) return 0;
    return get_u64_be(bytes);
  }

  Status put(Table table, std::string key, std::string value) {
    const WriteOp op{table, std::move(key), std::move(value), false};
    return store_->commit(std::span<const WriteOp>(&op, 1));
  }
  Status erase(Table table, std::string key) {
    const WriteOp op{table, std::move(key), {}, true};
    return store_->commit(std::span<const WriteOp>(&op, 1));
  }

  std::string root_;
  std::string dir_;
  std::unique_ptr<Store> store_;
};

bool mentions(const std::vector<std::string>& problems, const std::string& needle) {
  for (const auto& p : problems) {
    if (p.find(needle) != std::string::npos) return true;
  }
  return false;
}

std::string join(const std::vector<std::string>& problems) {
  std::string out;
  for (const auto& p : problems) out += "\n  " + p;
  return out;
}

}  // namespace

// --- the scenario itself ---------------------------------------------------------------------------

TEST(RecoveryScenario, ReferenceFoldHasTheMoneyTheRecordsImply) {
  const auto commits = scenario();
  const auto orgs = reference_fold(commits, commits.size());
  ASSERT_EQ(orgs.size(), 4u);
  // R: allowance + grant - charges it paid in c0 (1.5M + 0.25M) - transfer + allowance at c0+1 - 0.3M.
  EXPECT_EQ(orgs.at(raw(root_r)).balance_micros,
            allowance + 10'000'000 - 1'750'000 - 2'000'000 + allowance - 300'000);
  EXPECT_EQ(orgs.at(raw(root_r)).cycle, c0 + 1);
  EXPECT_EQ(orgs.at(raw(root_r)).cycle_spend_micros, 300'000);
  EXPECT_EQ(orgs.at(raw(sub_a)).cycle_spend_micros, 300'000);
  EXPECT_FALSE(orgs.at(raw(sub_a)).paused());
  EXPECT_EQ(orgs.at(raw(sub_b)).balance_micros, 2'000'000 - 100'000);
  EXPECT_EQ(orgs.at(raw(sub_b)).cycle_spend_micros, 1'500'000 + 100'000);
  EXPECT_EQ(orgs.at(raw(root_s)).balance_micros, allowance + 7'000'000 - 1'000);
}

// --- recover --------------------------------------------------------------------------------------------

TEST_F(RecoveryTest, FreshStoreRecoversToNothing) {
  store_ = open_store(dir_);
  RecoveryResult result;
  ASSERT_TRUE(recover(*store_, result).ok());
  EXPECT_EQ(result.last_seq, 0u);
  EXPECT_EQ(result.replayed_records, 0u);
  EXPECT_TRUE(audit_problems(*store_).empty());
}

TEST_F(RecoveryTest, OrgStateReachesTheStoreOnlyAtACheckpoint) {
  store_ = open_store(dir_);
  RecoveryResult start;
  ASSERT_TRUE(recover(*store_, start).ok());
  JournalWriter writer(*store_, 0);
  const auto commits = scenario();
  ASSERT_TRUE(writer.commit(commits[0], false).ok());
  ASSERT_TRUE(writer.commit(commits[1], false).ok());
  EXPECT_FALSE(load_org(*store_, root_r));
  EXPECT_EQ(writer.materializer().dirty_count(), 4u);
  ASSERT_TRUE(writer.commit(commits[2], true).ok());
  EXPECT_EQ(writer.materializer().dirty_count(), 0u);
  EXPECT_EQ(load_org(*store_, root_r), reference_fold(commits, 3).at(raw(root_r)));
  EXPECT_EQ(checkpoint_seq(*store_), count_records(commits, 3));
}

TEST_F(RecoveryTest, RecoverRebuildsTheSameOrgsAsAFullFold) {
  write_scenario_and_reopen();
  RecoveryResult result;
  ASSERT_TRUE(recover(*store_, result).ok());
  const auto commits = scenario();
  EXPECT_EQ(result.last_seq, count_records(commits, commits.size()));
  expect_orgs_equal_fold(*store_, commits.size());
}

TEST_F(RecoveryTest, RecoverReplaysExactlyTheRecordsAfterTheLastCheckpoint) {
  write_scenario_and_reopen();
  const auto commits = scenario();
  ASSERT_EQ(checkpoint_seq(*store_), count_records(commits, 5));  // last checkpoint: after commit index 4
  RecoveryResult result;
  ASSERT_TRUE(recover(*store_, result).ok());
  EXPECT_EQ(result.replayed_records, count_records(commits, commits.size()) - count_records(commits, 5));
  EXPECT_EQ(checkpoint_seq(*store_), result.last_seq);
}

TEST_F(RecoveryTest, RecoverTwiceGivesTheSameStateAndReplaysNothingTheSecondTime) {
  write_scenario_and_reopen();
  RecoveryResult first;
  ASSERT_TRUE(recover(*store_, first).ok());
  std::map<std::uint64_t, std::string> after_first;
  ASSERT_TRUE(store_->scan(Table::orgs, {}, {}, [&](std::string_view k, std::string_view v) {
    after_first[get_u64_be(k)] = std::string(v);
    return true;
  }).ok());
  reopen();
  RecoveryResult second;
  ASSERT_TRUE(recover(*store_, second).ok());
  EXPECT_EQ(second.last_seq, first.last_seq);
  EXPECT_EQ(second.replayed_records, 0u);
  std::map<std::uint64_t, std::string> after_second;
  ASSERT_TRUE(store_->scan(Table::orgs, {}, {}, [&](std::string_view k, std::string_view v) {
    after_second[get_u64_be(k)] = std::string(v);
    return true;
  }).ok());
  EXPECT_EQ(after_second, after_first);
  expect_orgs_equal_fold(*store_, scenario().size());
}

TEST_F(RecoveryTest, WritingContinuesAfterRecoveryAndRecoversAgain) {
  const auto commits = scenario();
  write_and_crash(dir_, 6);
  reopen();
  RecoveryResult result;
  ASSERT_TRUE(recover(*store_, result).ok());
  ASSERT_EQ(result.last_seq, count_records(commits, 6));
  {
    JournalWriter writer(*store_, result.last_seq);
    for (std::size_t i = 6; i < commits.size(); ++i) ASSERT_TRUE(writer.commit(commits[i], false).ok());
  }
  reopen();
  RecoveryResult again;
  ASSERT_TRUE(recover(*store_, again).ok());
  EXPECT_EQ(again.last_seq, count_records(commits, commits.size()));
  EXPECT_EQ(again.replayed_records, count_records(commits, commits.size()) - count_records(commits, 6));
  expect_orgs_equal_fold(*store_, commits.size());
  EXPECT_TRUE(audit_problems(*store_).empty()) << join(audit_problems(*store_));
}

// The process dies right after commit N (the store is closed, nothing more is written): after reopening
// and recovering, everything committed through N is there, and the audit agrees.
TEST_F(RecoveryTest, CrashAfterAnyCommitLosesNothingCommitted) {
  const auto commits = scenario();
  for (std::size_t n = 1; n <= commits.size(); ++n) {
    SCOPED_TRACE("crash after commit " + std::to_string(n));
    const std::string dir = root_ + "/crash_" + std::to_string(n);
    write_and_crash(dir, n);
    auto store = open_store(dir);
    ASSERT_NE(store, nullptr);
    RecoveryResult result;
    ASSERT_TRUE(recover(*store, result).ok());
    EXPECT_EQ(result.last_seq, count_records(commits, n));
    expect_orgs_equal_fold(*store, n);
    const auto problems = audit_problems(*store);
    EXPECT_TRUE(problems.empty()) << join(problems);
  }
}

// Incremental checkpoints: each commit writes only the orgs dirty longest, so stored snapshots are
// as of different seqs, most of them ahead of the checkpoint mark. A crash after any commit recovers
// to the full fold: recovery applies a replayed record only to snapshots older than it (applying it
// to one that already holds it would charge twice), and the audit agrees.
TEST_F(RecoveryTest, CrashAfterAnyCommitWithCheckpointSlicesLosesNothingAndCountsNothingTwice) {
  const auto commits = scenario();
  for (const std::size_t slice : {std::size_t{1}, std::size_t{2}, std::size_t{3}}) {
    for (std::size_t n = 1; n <= commits.size(); ++n) {
      SCOPED_TRACE("slices of " + std::to_string(slice) + ", crash after commit " + std::to_string(n));
      const std::string dir = root_ + "/slice_" + std::to_string(slice) + "_" + std::to_string(n);
      {
        auto store = open_store(dir);
        ASSERT_NE(store, nullptr);
        JournalWriter writer(*store, 0);
        for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(writer.commit_with_slice(commits[i], slice).ok());
      }
      auto store = open_store(dir);
      ASSERT_NE(store, nullptr);
      const auto problems_before = audit_problems(*store);  // the audit reads a crashed store as it is
      EXPECT_TRUE(problems_before.empty()) << join(problems_before);
      RecoveryResult result;
      ASSERT_TRUE(recover(*store, result).ok());
      EXPECT_EQ(result.last_seq, count_records(commits, n));
      expect_orgs_equal_fold(*store, n);
      EXPECT_EQ(checkpoint_seq(*store), result.last_seq);
      const auto problems = audit_problems(*store);
      EXPECT_TRUE(problems.empty()) << join(problems);
    }
  }
}

// A slice writes due orgs in key order, continuing where the last slice stopped; the mark stays just
// below the first seq of the orgs still dirty.
TEST_F(RecoveryTest, CheckpointSlicesSweepTheOrgsInKeyOrderAndTheMarkStaysBelowTheRest) {
  store_ = open_store(dir_);
  JournalWriter writer(*store_, 0);
  const auto commits = scenario();
  ASSERT_TRUE(writer.commit(commits[0], false).ok());  // users: no org dirty
  ASSERT_TRUE(writer.commit_with_slice(commits[1], 1).ok());  // four orgs created (seqs 3..6): R written
  std::uint64_t as_of = 0;
  ASSERT_TRUE(load_org(*store_, root_r, &as_of));
  EXPECT_EQ(as_of, 6u);
  EXPECT_FALSE(load_org(*store_, sub_a));
  EXPECT_EQ(checkpoint_seq(*store_), 3u) << "A became dirty at seq 4 and is not written yet";
  EXPECT_EQ(writer.materializer().dirty_count(), 3u);
  ASSERT_TRUE(writer.commit_with_slice({}, 2).ok());  // A and B
  EXPECT_TRUE(load_org(*store_, sub_a));
  EXPECT_TRUE(load_org(*store_, sub_b));
  EXPECT_FALSE(load_org(*store_, root_s));
  EXPECT_EQ(checkpoint_seq(*store_), 5u);
  ASSERT_TRUE(writer.commit_with_slice({}, 10).ok());
  EXPECT_EQ(writer.materializer().dirty_count(), 0u);
  EXPECT_EQ(checkpoint_seq(*store_), 6u) << "nothing dirty: the mark is the last record";
  EXPECT_EQ(load_org(*store_, root_s), reference_fold(commits, 2).at(raw(root_s)));
}

// The writer keeps the orgs it wrote in memory, clean, so the next record that touches one needs no
// read; past limits::materializer_orgs_cached_max clean orgs it forgets half of them. A record for a
// forgotten org reads it back from the store, one for a kept org applies to the kept state: both land.
TEST_F(RecoveryTest, WrittenOrgsStayCachedUpToTheBoundAndForgottenOnesAreReadBack) {
  store_ = open_store(dir_);
  JournalWriter writer(*store_, 0);
  const std::size_t cap = canopy::limits::materializer_orgs_cached_max;
  const std::size_t per_commit = cap / 10;
  const std::size_t orgs = cap + per_commit;
  const auto org = [](std::size_t i) { return OrgId{1'000'000 + i}; };
  std::vector<Record> commit;
  for (std::size_t i = 0; i < orgs; ++i) {
    commit.push_back(OrgCreated{org(i), OrgId::none, "Org", Plan::business, UserId::none, 0, at(c0, 1), c0, false, 0,
                                PaymentId::none});
    if (commit.size() < per_commit) continue;
    ASSERT_TRUE(writer.commit_with_slice(commit, SIZE_MAX).ok());  // every org written, clean
    commit.clear();
    if (i + 1 == cap) {
      EXPECT_EQ(writer.materializer().cached_count(), cap) << "at the bound, every written org is kept";
    }
  }
  EXPECT_EQ(writer.materializer().dirty_count(), 0u);
  EXPECT_EQ(writer.materializer().cached_count(), cap / 2) << "past the bound, half are forgotten";
  std::vector<Record> grants;
  for (std::size_t i = 0; i < orgs; i += 997) {
    grants.push_back(payment(org(i), 2'000'000 + i, PaymentKind::grant, PaymentStatus::succeeded,
                             static_cast<Micros>(1'000 + i), "", at(c0, 2)));
  }
  ASSERT_TRUE(writer.commit_with_slice(grants, SIZE_MAX).ok());
  for (std::size_t i = 0; i < orgs; i += 997) {
    const auto stored = load_org(*store_, org(i));
    ASSERT_TRUE(stored.has_value()) << i;
    EXPECT_EQ(stored->balance_micros, static_cast<Micros>(1'000 + i)) << "org " << i;
  }
}

TEST_F(RecoveryTest, SideRowsOfTheJournalTailAreThereAfterACrash) {
  write_scenario_and_reopen();
  RecoveryResult result;
  ASSERT_TRUE(recover(*store_, result).ok());
  // The last commit (after the last checkpoint): a top-up with a key and a charge at S.
  std::string value;
  ASSERT_TRUE(store_->get(Table::payment_keys, scoped_key(raw(root_s), "top-2"), value).ok());
  const std::uint64_t top_up_seq = get_u64_be(value);
  EXPECT_EQ(top_up_seq, result.last_seq - 2);
  ASSERT_TRUE(store_->get(Table::event_ids, scoped_key(raw(root_s), "evt_" + std::to_string(at(c0 + 1, 4)) + "_0"),
                          value).ok());
  const auto id_row = decode_event_id_row(value);  // seq of the charge, its payer, when it was accepted
  ASSERT_TRUE(id_row.has_value());
  EXPECT_EQ(id_row->seq, result.last_seq - 1);
  EXPECT_EQ(id_row->payer, root_s);
  EXPECT_EQ(id_row->at, at(c0 + 1, 4));
  // Payments of S, newest first: the top-up, then the free credits it was created with.
  std::vector<PaymentRow> rows;
  ASSERT_TRUE(store_->scan(Table::payments, u64_key(raw(root_s)), {}, [&](std::string_view, std::string_view v) {
    auto row = decode_payment(v);
    EXPECT_TRUE(row.has_value());
    if (row) rows.push_back(*row);
    return true;
  }).ok());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].id, PaymentId{308});
  EXPECT_EQ(rows[0].amount_micros, 7'000'000);
  EXPECT_EQ(rows[1].kind, PaymentKind::free_credits);
  EXPECT_EQ(rows[1].amount_micros, allowance);
  ASSERT_TRUE(store_->get(Table::emails, "bob@example.com", value).ok());
  EXPECT_EQ(get_u64_be(value), raw(bob));
}

// Event-id rows wait for a checkpoint of their own: when an org's snapshot is written with a charge
// in it but the charge's ids are not yet due, the mark stays below the charge, so a crash then still
// replays it for its ids (and not into the org, whose snapshot already holds it).
TEST_F(RecoveryTest, TheCheckpointMarkNeverPassesAnEventIdNotYetIndexed) {
  store_ = open_store(dir_);
  const auto commits = scenario();
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t charge_seq = 0;
  std::string value;
  {
    JournalWriter writer(*store_, 0);
    ASSERT_TRUE(writer.commit_with_slice(commits[0], SIZE_MAX).ok());
    ASSERT_TRUE(writer.commit_with_slice(commits[1], SIZE_MAX).ok());
    writer.materializer().set_now(t0);
    ASSERT_TRUE(writer.commit_due(commits[2], t0 - std::chrono::seconds(1)).ok());  // R granted at t0, not due
    writer.materializer().set_now(t0 + std::chrono::seconds(10));
    // R dirty since t0 is due at t0 + 1 s; the charge's ids, pending since t0 + 10 s, are not.
    const std::vector<Record> late{charge({ChainHop{root_r, c0}}, {1'000}, at(c0, 3))};
    ASSERT_TRUE(writer.commit_due(late, t0 + std::chrono::seconds(1)).ok());
    charge_seq = writer.materializer().last_seq();
    EXPECT_EQ(writer.materializer().ids_indexed_through(), charge_seq - 1);
    EXPECT_EQ(writer.materializer().id_rows_pending(), 1u);
    std::uint64_t as_of = 0;
    const auto stored = load_org(*store_, root_r, &as_of);
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(as_of, charge_seq) << "R's snapshot holds the charge";
    EXPECT_EQ(stored->balance_micros, allowance + 10'000'000 - 1'000);
    EXPECT_FALSE(store_->get(Table::event_ids, scoped_key(raw(root_r), "evt_" + std::to_string(at(c0, 3)) + "_0"),
                             value).ok()) << "not due: not written";
    EXPECT_EQ(checkpoint_seq(*store_), charge_seq - 1) << "the mark stops below the record whose ids wait";
  }  // the process is gone
  reopen();
  RecoveryResult result;
  ASSERT_TRUE(recover(*store_, result).ok());
  EXPECT_EQ(result.last_seq, charge_seq);
  ASSERT_TRUE(store_->get(Table::event_ids, scoped_key(raw(root_r), "evt_" + std::to_string(at(c0, 3)) + "_0"),
                          value).ok()) << "recovery indexed the id from the journal";
  EXPECT_EQ(decode_event_id_row(value)->seq, charge_seq);
  EXPECT_EQ(load_org(*store_, root_r)->balance_micros, allowance + 10'000'000 - 1'000) << "charged once";
  EXPECT_EQ(checkpoint_seq(*store_), charge_seq);
}

TEST_F(RecoveryTest, RecoverStopsAtAGapInTheJournalTail) {
  write_scenario_and_reopen();
  const std::uint64_t last = count_records(scenario(), scenario().size());
  ASSERT_TRUE(erase(Table::journal, u64_key(last - 1)).ok());
  const std::uint64_t checkpoint_before = checkpoint_seq(*store_);
  RecoveryResult result;
  const Status s = recover(*store_, result);
  EXPECT_EQ(s.code, Status::Code::corruption) << s.message;
  EXPECT_EQ(checkpoint_seq(*store_), checkpoint_before);
}

TEST_F(RecoveryTest, RecoverStopsAtARecordThatDoesNotDecode) {
  write_scenario_and_reopen();
  const std::uint64_t last = count_records(scenario(), scenario().size());
  ASSERT_TRUE(put(Table::journal, u64_key(last - 1), "\x05\x01garbage").ok());
  const std::uint64_t checkpoint_before = checkpoint_seq(*store_);
  RecoveryResult result;
  const Status s = recover(*store_, result);
  EXPECT_EQ(s.code, Status::Code::corruption) << s.message;
  EXPECT_EQ(checkpoint_seq(*store_), checkpoint_before);
}

TEST_F(RecoveryTest, RecoverRefusesARecordNamingAnOrgThatWasNeverCreated) {
  write_scenario_and_reopen();
  const std::uint64_t last = count_records(scenario(), scenario().size());
  ASSERT_TRUE(put(Table::journal, u64_key(last + 1), encode(Record{LimitSet{OrgId{999}, 5}})).ok());
  RecoveryResult result;
  EXPECT_EQ(recover(*store_, result).code, Status::Code::corruption);
}

TEST_F(RecoveryTest, RecoverRefusesATailThatWouldOverdrawABalance) {
  write_scenario_and_reopen();
  const std::uint64_t last = count_records(scenario(), scenario().size());
  ASSERT_TRUE(put(Table::journal, u64_key(last + 1),
                  encode(Record{charge({ChainHop{root_s, c0}}, {1'000'000'000'000}, at(c0 + 1, 5))}))
                  .ok());
  const std::uint64_t checkpoint_before = checkpoint_seq(*store_);
  RecoveryResult result;
  EXPECT_EQ(recover(*store_, result).code, Status::Code::corruption);
  EXPECT_EQ(checkpoint_seq(*store_), checkpoint_before);
}

TEST_F(RecoveryTest, RecoverRefusesADataFolderOfAnotherSchemaVersion) {
  write_scenario_and_reopen();
  ASSERT_TRUE(put(Table::meta, std::string(meta_schema), u64_key(schema_version + 1)).ok());
  RecoveryResult result;
  EXPECT_EQ(recover(*store_, result).code, Status::Code::corruption);
}

TEST_F(RecoveryTest, AFolderOfTheVersionBeforeTrimmingIsReadAndMarkedAsTheCurrentOne) {
  write_scenario_and_reopen();
  ASSERT_TRUE(put(Table::meta, std::string(meta_schema), u64_key(schema_version_trim_free)).ok());
  RecoveryResult result;
  ASSERT_TRUE(recover(*store_, result).ok());
  std::string version;
  ASSERT_TRUE(store_->get(Table::meta, meta_schema, version).ok());
  EXPECT_EQ(get_u64_be(version), schema_version);  // a build that does not trim now refuses it
  expect_orgs_equal_fold(*store_, scenario().size());
}

TEST_F(RecoveryTest, MaterializerRefusesARecordForAnUnknownOrg) {
  store_ = open_store(dir_);
  Materializer materializer(*store_);
  WriteOps ops;
  EXPECT_TRUE(materializer.add(1, Record{LimitSet{OrgId{999}, 5}}, ops).has_value());
}

TEST_F(RecoveryTest, MaterializerRefusesAChargeThatWouldOverdrawAndLeavesEveryOrgOfTheChainAsItWas) {
  store_ = open_store(dir_);
  Materializer materializer(*store_);
  WriteOps ops;
  const auto commits = scenario();
  std::uint64_t seq = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    for (const Record& record : commits[i]) ASSERT_FALSE(materializer.add(++seq, record, ops).has_value());
  }
  materializer.flush(ops);
  ASSERT_TRUE(store_->commit(ops.span()).ok());
  const auto before = reference_fold(commits, 3);
  ops.clear();
  // R holds 15M: a 16M charge up the chain B -> A -> R cannot be paid.
  const Record overdraw{charge({ChainHop{sub_b, c0}, ChainHop{sub_a, c0}, ChainHop{root_r, c0}}, {16'000'000},
                               at(c0, 9))};
  EXPECT_TRUE(materializer.add(++seq, overdraw, ops).has_value());
  WriteOps flushed;
  materializer.flush(flushed);
  ASSERT_TRUE(store_->commit(flushed.span()).ok());
  for (OrgId id : {sub_b, sub_a, root_r}) EXPECT_EQ(load_org(*store_, id), before.at(raw(id))) << to_string(id);
}

// --- audit ----------------------------------------------------------------------------------------------

TEST_F(RecoveryTest, AuditOfACleanStoreWithAnUnreplayedTailFindsNothing) {
  write_scenario_and_reopen();
  AuditResult result;
  ASSERT_TRUE(audit(*store_, result).ok());
  EXPECT_TRUE(result.problems.empty()) << join(result.problems);
  EXPECT_EQ(result.records, count_records(scenario(), scenario().size()));
  EXPECT_EQ(result.orgs, 4u);
}

TEST_F(RecoveryTest, AuditAfterRecoveryFindsNothing) {
  write_scenario_and_reopen();
  RecoveryResult recovered;
  ASSERT_TRUE(recover(*store_, recovered).ok());
  const auto problems = audit_problems(*store_);
  EXPECT_TRUE(problems.empty()) << join(problems);
}

TEST_F(RecoveryTest, AuditReportsAStoredBalanceThatDiffersFromTheJournal) {
  write_scenario_and_reopen();
  RecoveryResult recovered;
  ASSERT_TRUE(recover(*store_, recovered).ok());
  OrgState tampered = *load_org(*store_, root_s);
  tampered.balance_micros += 1'000'000;
  ASSERT_TRUE(put(Table::orgs, u64_key(raw(root_s)), encode(tampered)).ok());
  const auto problems = audit_problems(*store_);
  EXPECT_TRUE(mentions(problems, to_string(root_s))) << join(problems);
  EXPECT_FALSE(mentions(problems, to_string(root_r))) << join(problems);
}

// R's checkpoint is older than the tail that rolls its cycle and charges it; a wrong balance in the
// checkpoint survives that replay and must be found. (A wrong cycle spend there would not matter: the
// rollover in the tail resets it, and the audit compares what recovery would produce.)
TEST_F(RecoveryTest, AuditReportsATamperedCheckpointEvenWhenTheTailTouchesTheOrg) {
  write_scenario_and_reopen();
  OrgState tampered = *load_org(*store_, root_r);
  tampered.balance_micros -= 1;
  ASSERT_TRUE(put(Table::orgs, u64_key(raw(root_r)), encode(tampered)).ok());
  const auto problems = audit_problems(*store_);
  EXPECT_TRUE(mentions(problems, to_string(root_r))) << join(problems);
}

TEST_F(RecoveryTest, AuditReportsAStoredOrgThatDoesNotDecode) {
  write_scenario_and_reopen();
  ASSERT_TRUE(put(Table::orgs, u64_key(raw(sub_a)), "\x40\x01not an org").ok());
  const auto problems = audit_problems(*store_);
  EXPECT_TRUE(mentions(problems, to_string(sub_a))) << join(problems);
}

TEST_F(RecoveryTest, AuditReportsAMissingOrgRow) {
  write_scenario_and_reopen();
  RecoveryResult recovered;
  ASSERT_TRUE(recover(*store_, recovered).ok());
  ASSERT_TRUE(erase(Table::orgs, u64_key(raw(sub_b))).ok());
  const auto problems = audit_problems(*store_);
  EXPECT_TRUE(mentions(problems, to_string(sub_b))) << join(problems);
}

TEST_F(RecoveryTest, AuditReportsAnOrgRowNoRecordCreated) {
  write_scenario_and_reopen();
  OrgState ghost = *load_org(*store_, root_s);
  ghost.id = OrgId{999};
  ASSERT_TRUE(put(Table::orgs, u64_key(999), encode(ghost)).ok());
  const auto problems = audit_problems(*store_);
  EXPECT_TRUE(mentions(problems, to_string(OrgId{999}))) << join(problems);
}

TEST_F(RecoveryTest, AuditReportsAGapInTheJournal) {
  write_scenario_and_reopen();
  RecoveryResult recovered;
  ASSERT_TRUE(recover(*store_, recovered).ok());
  // Record 7 is R's grant (commit index 2): a gap that also changes what the journal adds up to.
  ASSERT_TRUE(erase(Table::journal, u64_key(7)).ok());
  const auto problems = audit_problems(*store_);
  EXPECT_TRUE(mentions(problems, "gap")) << join(problems);
  EXPECT_TRUE(mentions(problems, to_string(root_r))) << join(problems);
}

TEST_F(RecoveryTest, AuditReportsAJournalThatDoesNotDecode) {
  write_scenario_and_reopen();
  ASSERT_TRUE(put(Table::journal, u64_key(3), "\x02\x01garbage").ok());
  AuditResult result;
  const Status s = audit(*store_, result);
  EXPECT_TRUE(!s.ok() || !result.problems.empty()) << "a damaged journal must not audit clean";
}

TEST_F(RecoveryTest, AuditReportsACreditTheRecordsDoNotExplain) {
  write_scenario_and_reopen();
  RecoveryResult recovered;
  ASSERT_TRUE(recover(*store_, recovered).ok());
  // Both the stored state and the journal fold agree on a balance the ledger sums cannot explain: a
  // second CycleRolled into a cycle R is already in carries credits that apply() ignores.
  const std::uint64_t next = recovered.last_seq + 1;
  ASSERT_TRUE(put(Table::journal, u64_key(next), encode(Record{CycleRolled{root_r, c0 + 1, allowance, PaymentId{9}}}))
                  .ok());
  const auto problems = audit_problems(*store_);
  EXPECT_TRUE(mentions(problems, to_string(root_r))) << join(problems);
}

TEST_F(RecoveryTest, AuditWritesNothing) {
  write_scenario_and_reopen();
  OrgState tampered = *load_org(*store_, root_s);
  tampered.balance_micros += 1;
  const std::string bytes = encode(tampered);
  ASSERT_TRUE(put(Table::orgs, u64_key(raw(root_s)), bytes).ok());
  const std::uint64_t checkpoint = checkpoint_seq(*store_);
  EXPECT_FALSE(audit_problems(*store_).empty());
  std::string stored;
  ASSERT_TRUE(store_->get(Table::orgs, u64_key(raw(root_s)), stored).ok());
  EXPECT_EQ(stored, bytes);
  EXPECT_EQ(checkpoint_seq(*store_), checkpoint);
}

// `canopy check` exists to find damage; a journal whose records overdraw a balance is damage to
// report (exit 1 with the org named), not a reason for the checker itself to die. Run in a child
// process so that a crash fails this test instead of the whole run; the store is closed first, since
// an LMDB environment must not cross a fork.
TEST_F(RecoveryTest, AuditReportsAJournalThatOverdrawsABalanceInsteadOfCrashing) {
  write_scenario_and_reopen();
  const std::uint64_t last = count_records(scenario(), scenario().size());
  ASSERT_TRUE(put(Table::journal, u64_key(last + 1),
                  encode(Record{charge({ChainHop{root_s, c0}}, {1'000'000'000'000}, at(c0 + 1, 5))}))
                  .ok());
  store_.reset();
  const std::string dir = dir_;
  const std::string needle = to_string(root_s);
  const auto audit_reports = [&] {
    Status status;
    auto store = open_lmdb_store(dir, LmdbOptions{}, status);
    AuditResult result;
    return store && audit(*store, result).ok() && mentions(result.problems, needle);
  };
  EXPECT_EXIT(std::exit(audit_reports() ? 0 : 1), ::testing::ExitedWithCode(0), "");
}
