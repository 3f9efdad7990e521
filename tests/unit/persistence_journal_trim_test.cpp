// Goal: the journal is trimmed once the checkpoints cover it, and nothing that needed the trimmed
// records notices. Recovery rebuilds the same orgs and writing goes on with the next seq; the audit,
// starting from the audit base the trim folded the records into, agrees with the stored state and
// still finds tampering; a record the audit would report is never trimmed; a backup in progress holds
// the trim at the mark it began at; a repeated top-up or transfer is answered from its payment rows.
// Real LMDB in a fresh folder under /tmp.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config/limits.hpp"
#include "persistence/audit_base.hpp"
#include "persistence/audit_fold.hpp"
#include "persistence/journal_trim.hpp"
#include "persistence/payment_rows.hpp"
#include "persistence/recovery.hpp"
#include "persistence/trim_hold.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/unit/journal_scenario.hpp"

using namespace canopy::domain;
using namespace canopy::persistence;
using namespace canopy::test;

namespace {

std::string joined(const std::vector<std::string>& problems) {
  std::string out;
  for (const auto& p : problems) out += "\n  " + p;
  return out;
}

class JournalTrimTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }

  void open() {
    store_.reset();
    Status status;
    store_ = open_lmdb_store(dir_.str("data"), options_, status);
    ASSERT_TRUE(status.ok()) << status.message;
    RecoveryResult recovered;
    ASSERT_TRUE(recover(*store_, recovered).ok());
    writer_ = std::make_unique<JournalWriter>(*store_, recovered.last_seq);
  }

  // The scenario's first `through` commits, the checkpoint mark covering exactly the first `covered`.
  void write(std::size_t through, std::size_t covered) {
    const auto commits = scenario();
    for (std::size_t i = 0; i < through; ++i) {
      ASSERT_TRUE(writer_->commit(commits[i], i + 1 == covered).ok());
    }
  }

  // As the journal trimmer and the writer do: folds into the audit base up to the committed mark,
  // commit after commit (the records folded by each call in fold_calls_), then erases what the base
  // holds, commit after commit (the records erased by each step in erase_steps_). Returns the records
  // erased.
  std::size_t trim(const Store& reads) {
    Status status;
    AuditBase base(reads, status);
    EXPECT_TRUE(status.ok()) << status.message;
    fold_calls_.clear();
    for (;;) {
      WriteOps ops;
      const std::size_t n = base.advance(mark(), ops);
      if (!ops.empty()) {
        EXPECT_TRUE(store_->commit(ops.span()).ok());
      }
      if (n == 0) break;
      fold_calls_.push_back(n);
    }
    stopped_ = base.stopped_because();
    JournalTrim erase(reads, status);
    EXPECT_TRUE(status.ok()) << status.message;
    erase_steps_.clear();
    std::size_t erased = 0;
    for (;;) {
      WriteOps ops;
      const std::size_t n = erase.step(base.seq(), ops);
      if (!ops.empty()) {
        EXPECT_TRUE(store_->commit(ops.span()).ok());
      }
      if (n == 0) break;
      erase_steps_.push_back(n);
      erased += n;
    }
    return erased;
  }
  std::size_t trim() { return trim(*store_); }

  std::uint64_t base_seq() {
    std::string bytes;
    return store_->get(Table::audit_meta, audit_base_seq_key, bytes).ok() ? get_u64_be(bytes) : 0;
  }
  std::uint64_t erased_through() {
    std::string bytes;
    return store_->get(Table::meta, meta_journal_erased_through, bytes).ok() ? get_u64_be(bytes) : 0;
  }
  std::uint64_t mark() {
    std::string bytes;
    return store_->get(Table::checkpoint, checkpoint_mark_key, bytes).ok() ? get_u64_be(bytes) : 0;
  }
  std::uint64_t first_record() {
    std::uint64_t first = 0;
    EXPECT_TRUE(store_->scan(Table::journal, {}, {}, [&](std::string_view key, std::string_view) {
      first = get_u64_be(key);
      return false;
    }).ok());
    return first;
  }

  AuditResult audited() {
    AuditResult result;
    const Status s = audit(*store_, result);
    EXPECT_TRUE(s.ok()) << s.message;
    return result;
  }

  void commit(std::vector<WriteOp> ops) { ASSERT_TRUE(store_->commit(ops).ok()); }

  // A copy in `dir`, audited (expected clean) then recovered (expected to succeed), as a restore would.
  struct CheckedCopy {
    AuditResult audit;
    RecoveryResult recovered;
  };
  CheckedCopy check_copy(const std::string& dir) {
    CheckedCopy out;
    Status status;
    auto copy = open_lmdb_store(dir, {}, status);
    EXPECT_TRUE(status.ok()) << status.message;
    if (!copy) return out;
    EXPECT_TRUE(audit(*copy, out.audit).ok());
    EXPECT_TRUE(out.audit.problems.empty()) << joined(out.audit.problems);
    EXPECT_TRUE(recover(*copy, out.recovered).ok());
    return out;
  }

  TempDir dir_;
  LmdbOptions options_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<JournalWriter> writer_;
  std::string stopped_;
  std::vector<std::size_t> fold_calls_;
  std::vector<std::size_t> erase_steps_;
};

bool mentions(const std::vector<std::string>& problems, const std::string& needle) {
  for (const auto& p : problems) {
    if (p.find(needle) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_F(JournalTrimTest, AFreshStoreHasNothingToTrim) {
  EXPECT_EQ(trim(), 0u);
  EXPECT_EQ(base_seq(), 0u);
  EXPECT_EQ(erased_through(), 0u);
}

TEST_F(JournalTrimTest, TrimsWhatTheCheckpointCoversAndTheAuditStillAgrees) {
  const auto commits = scenario();
  write(commits.size(), 5);
  const std::uint64_t covered = count_records(commits, 5);
  ASSERT_EQ(mark(), covered);
  EXPECT_EQ(trim(), covered);
  EXPECT_EQ(fold_calls_, std::vector<std::size_t>{covered});  // one commit of the base
  EXPECT_EQ(base_seq(), covered);
  EXPECT_EQ(erased_through(), covered);
  EXPECT_EQ(first_record(), covered + 1);  // the records after the mark stay
  const auto result = audited();
  EXPECT_TRUE(result.problems.empty()) << joined(result.problems);
  EXPECT_EQ(result.base_seq, covered);
  EXPECT_EQ(result.records, count_records(commits, commits.size()) - covered);
  EXPECT_EQ(result.orgs, 4u);
}

TEST_F(JournalTrimTest, TheBaseHoldsEachOrgAsTheRecordsUpToItLeftIt) {
  const auto commits = scenario();
  write(commits.size(), commits.size());
  trim();
  const auto want = reference_fold(commits, commits.size());
  for (const auto& [id, org] : want) {
    std::string bytes;
    ASSERT_TRUE(store_->get(Table::audit_base, u64_key(id), bytes).ok()) << describe(OrgId{id});
    const auto base = decode_audited_org(bytes);
    ASSERT_TRUE(base.has_value());
    EXPECT_EQ(base->state, org);
    EXPECT_EQ(base->ledger.credits - base->ledger.debits, org.balance_micros);
  }
  // R: the allowance twice and a grant in; two cycles' charges it paid and a transfer out.
  std::string bytes;
  ASSERT_TRUE(store_->get(Table::audit_base, u64_key(raw(root_r)), bytes).ok());
  EXPECT_EQ(decode_audited_org(bytes)->ledger, (Ledger{allowance + 10'000'000 + allowance, 1'750'000 + 2'000'000 + 300'000}));
  EXPECT_EQ(first_record(), 0u);  // nothing left
  // Its one date: every charge up to the last record was accepted by the latest of them.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> dates;
  ASSERT_TRUE(store_->scan(Table::audit_dates, {}, {}, [&](std::string_view key, std::string_view value) {
    dates.emplace_back(get_u64_be(key), get_u64_be(value));
    return true;
  }).ok());
  const auto latest = static_cast<std::uint64_t>(at(c0 + 1, 4));  // the scenario's last charge
  EXPECT_EQ(dates, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{count_records(commits, commits.size()), latest}}));
}

TEST_F(JournalTrimTest, ALaterRoundTrimsWhatLaterCheckpointsCover) {
  const auto commits = scenario();
  write(5, 2);
  trim();
  EXPECT_EQ(base_seq(), count_records(commits, 2));
  ASSERT_TRUE(writer_->commit({OrgRenamed{sub_a, "Client A, renamed"}}, true).ok());
  trim();
  EXPECT_EQ(base_seq(), count_records(commits, 5) + 1);
  EXPECT_EQ(erased_through(), count_records(commits, 5) + 1);
  const auto result = audited();
  EXPECT_TRUE(result.problems.empty()) << joined(result.problems);
  EXPECT_EQ(result.records, 0u);
}

TEST_F(JournalTrimTest, RecoveryAfterATrimRebuildsTheSameOrgsAndWritingGoesOnWithTheNextSeq) {
  const auto commits = scenario();
  write(commits.size(), 5);
  trim();
  open();  // recovers: replays the records after the mark, none of them trimmed
  for (const auto& [id, want] : reference_fold(commits, commits.size())) {
    EXPECT_EQ(load_org(*store_, OrgId{id}), want) << describe(OrgId{id});
  }
  const std::uint64_t last = count_records(commits, commits.size());
  ASSERT_TRUE(writer_->commit({OrgRenamed{root_s, "Solo, renamed"}}, true).ok());
  std::string record;
  EXPECT_TRUE(store_->get(Table::journal, u64_key(last + 1), record).ok());
  trim();
  EXPECT_EQ(erased_through(), last + 1);
  open();  // a journal trimmed through its very last record still says where to go on from
  ASSERT_TRUE(writer_->commit({OrgRenamed{root_s, "Solo again"}}, false).ok());
  EXPECT_TRUE(store_->get(Table::journal, u64_key(last + 2), record).ok());
  const auto result = audited();
  EXPECT_TRUE(result.problems.empty()) << joined(result.problems);
}

TEST_F(JournalTrimTest, TheWriterErasesInSlicesNoLargerThanTheLimit) {
  write(2, 2);
  const std::size_t renames = canopy::limits::journal_trim_records_per_commit + 100;
  std::vector<Record> records;
  for (std::size_t i = 0; i < renames; ++i) {
    std::string name = "B";
    name += std::to_string(i);
    records.push_back(OrgRenamed{sub_b, name});
  }
  ASSERT_TRUE(writer_->commit(records, true).ok());
  const std::size_t total = count_records(scenario(), 2) + renames;
  EXPECT_EQ(trim(), total);
  EXPECT_EQ(erase_steps_, (std::vector<std::size_t>{canopy::limits::journal_trim_records_per_commit,
                                                    total - canopy::limits::journal_trim_records_per_commit}));
  const auto result = audited();
  EXPECT_TRUE(result.problems.empty()) << joined(result.problems);
  EXPECT_EQ(result.base_seq, total);
}

TEST_F(JournalTrimTest, TheBaseFoldsAtMostTheOrgLimitPerCommit) {
  std::vector<Record> created;
  const std::size_t orgs = canopy::limits::audit_base_orgs_per_commit_max + 10;
  for (std::size_t i = 0; i < orgs; ++i) {
    created.push_back(OrgCreated{OrgId{1000 + i}, OrgId::none, "Org", Plan::pay_as_you_go, UserId::none, 0, at(c0, 1),
                                 c0, false, 0, PaymentId::none});
  }
  ASSERT_TRUE(writer_->commit(created, true).ok());
  EXPECT_EQ(trim(), orgs);
  EXPECT_EQ(fold_calls_, (std::vector<std::size_t>{canopy::limits::audit_base_orgs_per_commit_max, 10}));
  EXPECT_EQ(audited().orgs, orgs);
}

TEST_F(JournalTrimTest, NeverTrimsARecordTheAuditWouldReport) {
  const auto commits = scenario();
  write(3, 3);
  const std::uint64_t good = count_records(commits, 3);
  // A charge on an org never created, journaled behind the materializer's back, and a mark past it.
  ChargeBatch stray;
  stray.chain = {ChainHop{OrgId{999}, c0}};
  stray.at = at(c0, 9);
  stray.events = {ChargeEvent{"evt_stray", "assistants.reply", 1, 1, stray.at}};
  commit({WriteOp{Table::journal, u64_key(good + 1), encode(Record{stray})},
          WriteOp{Table::journal, u64_key(good + 2), encode(Record{OrgRenamed{sub_a, "after"}})},
          WriteOp{Table::checkpoint, std::string(checkpoint_mark_key), u64_key(good + 2)}});
  EXPECT_EQ(trim(), good);
  EXPECT_EQ(base_seq(), good);
  EXPECT_NE(stopped_.find("unknown org"), std::string::npos) << stopped_;
  EXPECT_EQ(first_record(), good + 1);
  EXPECT_TRUE(mentions(audited().problems, "names unknown org")) << joined(audited().problems);
}

TEST_F(JournalTrimTest, TheAuditFromTheBaseStillFindsTampering) {
  const auto commits = scenario();
  write(commits.size(), commits.size());
  trim();
  // A stored balance changed: it no longer matches the base.
  auto org = load_org(*store_, root_s);
  ASSERT_TRUE(org.has_value());
  org->balance_micros += 1;
  commit({WriteOp{Table::orgs, u64_key(raw(root_s)), encode(*org, mark())}});
  EXPECT_TRUE(mentions(audited().problems, describe(root_s) + ": stored state")) << joined(audited().problems);
  // A base row whose balance its ledger does not explain.
  std::string bytes;
  ASSERT_TRUE(store_->get(Table::audit_base, u64_key(raw(sub_b)), bytes).ok());
  auto base = decode_audited_org(bytes);
  base->state.balance_micros += 5;
  commit({WriteOp{Table::audit_base, u64_key(raw(sub_b)), encode(*base)}});
  EXPECT_TRUE(mentions(audited().problems, describe(sub_b) + ": balance")) << joined(audited().problems);
  // A base row that does not decode.
  commit({WriteOp{Table::audit_base, u64_key(raw(sub_a)), "junk"}});
  EXPECT_TRUE(mentions(audited().problems, "audit base row of " + describe(sub_a))) << joined(audited().problems);
}

TEST_F(JournalTrimTest, AStatePartBehindTheTrimIsRefused) {
  const auto commits = scenario();
  write(commits.size(), 5);
  trim();
  const std::uint64_t trimmed = count_records(commits, 5);
  EXPECT_TRUE(check_mark_in_journal(*store_, trimmed).ok());
  EXPECT_TRUE(check_mark_in_journal(*store_, trimmed + 1).ok());
  EXPECT_EQ(check_mark_in_journal(*store_, trimmed - 1).code, Status::Code::corruption);
  EXPECT_EQ(check_mark_in_journal(*store_, count_records(commits, commits.size()) + 1).code, Status::Code::corruption);
  commit({WriteOp{Table::checkpoint, std::string(checkpoint_mark_key), u64_key(trimmed - 1)}});
  EXPECT_TRUE(mentions(audited().problems, "trimmed through record")) << joined(audited().problems);
}

TEST_F(JournalTrimTest, ABackupHoldKeepsTheRecordsAfterItsMark) {
  const auto commits = scenario();
  write(commits.size(), 2);
  const std::uint64_t held = count_records(commits, 2);
  {
    Status status;
    const TrimHold hold(dir_.str("data"), held - 1, status);
    ASSERT_TRUE(status.ok()) << status.message;
    EXPECT_EQ(store_->trim_limit(), held - 1);
    ASSERT_TRUE(writer_->commit({}, true).ok());  // the mark moves on to the last record
    EXPECT_EQ(trim(), held - 1);
    EXPECT_EQ(base_seq(), count_records(commits, commits.size()));  // the base is not held
  }
  EXPECT_EQ(store_->trim_limit(), UINT64_MAX);
  EXPECT_EQ(trim(), count_records(commits, commits.size()) - (held - 1));
}

TEST_F(JournalTrimTest, AnUnlockedHoldHoldsEverythingWhileYoungAndIsRemovedOnceStale) {
  // A hold file nobody has locked: a copy that has not locked it yet, or one that died.
  const std::string path = dir_.str("data") + "/trim-hold-1-0-00";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  const std::string mark = u64_key(7);
  ASSERT_EQ(::write(fd, mark.data(), mark.size()), 8);
  ::close(fd);
  EXPECT_EQ(held_trim_limit(dir_.str("data")), 0u);
  EXPECT_EQ(::access(path.c_str(), F_OK), 0);
  const timespec old[2] = {{std::time(nullptr) - canopy::limits::trim_hold_lock_grace_seconds - 1, 0},
                           {std::time(nullptr) - canopy::limits::trim_hold_lock_grace_seconds - 1, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), old, 0), 0);
  EXPECT_EQ(held_trim_limit(dir_.str("data")), UINT64_MAX);
  EXPECT_NE(::access(path.c_str(), F_OK), 0);
}

TEST_F(JournalTrimTest, AHoldTheServerCannotOpenHoldsEverything) {
  // Open fails with something else than "gone" (a hold of another user's the server may not read is
  // EACCES; tests run as root, so a link to itself, ELOOP, stands in for it).
  const std::string path = dir_.str("data") + "/trim-hold-1-0-00";
  ASSERT_EQ(::symlink(path.c_str(), path.c_str()), 0);
  EXPECT_EQ(held_trim_limit(dir_.str("data")), 0u);
  ASSERT_EQ(::unlink(path.c_str()), 0);
  // A link to nothing: open says ENOENT, as for a hold released meanwhile.
  ASSERT_EQ(::symlink((path + "-nowhere").c_str(), path.c_str()), 0);
  EXPECT_EQ(held_trim_limit(dir_.str("data")), UINT64_MAX);
}

TEST_F(JournalTrimTest, AHeldRoundWaitsForTheBaseToMoveAndThenErasesTheRest) {
  const auto commits = scenario();
  write(commits.size(), commits.size());
  const std::uint64_t last = count_records(commits, commits.size());
  Status status;
  AuditBase base(*store_, status);
  WriteOps fold_ops;
  ASSERT_GT(base.advance(mark(), fold_ops), 0u);
  ASSERT_TRUE(store_->commit(fold_ops.span()).ok());
  JournalTrim erase(*store_, status);
  const auto step = [&] {
    WriteOps ops;
    const std::size_t n = erase.step(base.seq(), ops);
    if (!ops.empty()) {
      EXPECT_TRUE(store_->commit(ops.span()).ok());
    }
    return n;
  };
  {
    const TrimHold hold(dir_.str("data"), 3, status);
    ASSERT_TRUE(status.ok()) << status.message;
    EXPECT_EQ(step(), 3u);
    EXPECT_EQ(step(), 0u);
    EXPECT_FALSE(erase.due(base.seq())) << "a held round must not be due again at once (the writer would spin)";
  }
  EXPECT_FALSE(erase.due(base.seq()));  // released, but the base has not moved
  ASSERT_TRUE(writer_->commit({OrgRenamed{root_s, "Solo, renamed"}}, true).ok());
  fold_ops.clear();
  ASSERT_EQ(base.advance(mark(), fold_ops), 1u);
  ASSERT_TRUE(store_->commit(fold_ops.span()).ok());
  EXPECT_TRUE(erase.due(base.seq()));
  EXPECT_EQ(step(), last + 1 - 3);
  EXPECT_EQ(first_record(), 0u);
}

TEST_F(JournalTrimTest, ABackupOfATrimmedStoreAuditsCleanAndRecovers) {
  const auto commits = scenario();
  write(commits.size(), 5);
  trim();
  ASSERT_TRUE(store_->copy_compacted(dir_.str("copy")).ok());
  EXPECT_EQ(held_trim_limit(dir_.str("data")), UINT64_MAX);  // the copy's hold is gone with it
  const auto copy = check_copy(dir_.str("copy"));
  EXPECT_EQ(copy.audit.base_seq, count_records(commits, 5));
  EXPECT_EQ(copy.recovered.last_seq, count_records(commits, commits.size()));
}

TEST_F(JournalTrimTest, ARepeatedTopUpOrTransferIsAnsweredFromItsRowsOnceItsRecordIsTrimmed) {
  const auto commits = scenario();
  write(commits.size(), commits.size());
  trim();
  ASSERT_EQ(first_record(), 0u);
  // The scenario's top-up "top-2" by S and transfer "move-1" from R to B, as journaled.
  const auto top_up = decided_payment(*store_, root_s, "top-2");
  ASSERT_TRUE(top_up.has_value());
  const auto* p = std::get_if<PaymentRecorded>(&*top_up);
  ASSERT_NE(p, nullptr);
  const auto want_p = std::get<PaymentRecorded>(commits[9][0]);
  EXPECT_EQ(std::tie(p->org, p->payment, p->kind, p->status, p->amount_micros, p->at, p->idempotency_key, p->reason),
            std::tie(want_p.org, want_p.payment, want_p.kind, want_p.status, want_p.amount_micros, want_p.at,
                     want_p.idempotency_key, want_p.reason));
  const auto transfer = decided_payment(*store_, root_r, "move-1");
  ASSERT_TRUE(transfer.has_value());
  const auto* t = std::get_if<TransferRecorded>(&*transfer);
  ASSERT_NE(t, nullptr);
  const auto want_t = std::get<TransferRecorded>(commits[5][1]);
  EXPECT_EQ(std::tie(t->from, t->to, t->out_payment, t->in_payment, t->amount_micros, t->at, t->idempotency_key),
            std::tie(want_t.from, want_t.to, want_t.out_payment, want_t.in_payment, want_t.amount_micros, want_t.at,
                     want_t.idempotency_key));
  // The failed top-up "top-1" by R is remembered as failed.
  const auto failed = decided_payment(*store_, root_r, "top-1");
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(std::get<PaymentRecorded>(*failed).status, PaymentStatus::failed);
  EXPECT_FALSE(decided_payment(*store_, root_r, "never-used").has_value());
}

TEST_F(JournalTrimTest, AFolderWithoutAnAuditPartReadsAsNeverTrimmed) {
  // As a server of an earlier version left it: no audit folder.
  const auto commits = scenario();
  write(commits.size(), commits.size());
  store_.reset();
  writer_.reset();
  std::filesystem::remove_all(dir_.str("data") + "/audit");
  Status status;
  auto read_only = open_lmdb_store(dir_.str("data"), LmdbOptions::reading(), status);
  ASSERT_TRUE(status.ok()) << status.message;
  EXPECT_FALSE(std::filesystem::exists(dir_.str("data") + "/audit"));  // a read-only open writes nothing
  AuditResult result;
  ASSERT_TRUE(audit(*read_only, result).ok());
  EXPECT_TRUE(result.problems.empty()) << joined(result.problems);
  EXPECT_EQ(result.base_seq, 0u);
  EXPECT_EQ(result.records, count_records(commits, commits.size()));
  ASSERT_TRUE(read_only->copy_compacted(dir_.str("copy")).ok());
  AuditResult copied;
  auto copy = open_lmdb_store(dir_.str("copy"), LmdbOptions::reading(), status);
  ASSERT_TRUE(status.ok()) << status.message;
  ASSERT_TRUE(audit(*copy, copied).ok());
  EXPECT_TRUE(copied.problems.empty()) << joined(copied.problems);
  read_only.reset();
  open();  // a writing open creates the part, and the trim goes on from nothing
  EXPECT_EQ(trim(), count_records(commits, commits.size()));
  EXPECT_TRUE(audited().problems.empty());
}

TEST_F(JournalTrimTest, ABasePastTheJournalIsRefusedByRecoveryAndReportedByTheAudit) {
  // An audit part put beside a journal it does not belong to: its base is past the journal's end.
  const auto commits = scenario();
  write(commits.size(), commits.size());
  const std::uint64_t last = count_records(commits, commits.size());
  commit({WriteOp{Table::audit_meta, std::string(audit_base_seq_key), u64_key(last + 5)}});
  EXPECT_TRUE(mentions(audited().problems, "past the end of the journal")) << joined(audited().problems);
  RecoveryResult recovered;
  const Status s = recover(*store_, recovered);
  EXPECT_EQ(s.code, Status::Code::corruption);
  EXPECT_NE(s.message.find("audit part"), std::string::npos) << s.message;
}

TEST_F(JournalTrimTest, ARefusedOrUndecodableRecordOrAGapStopsTheBaseBeforeIt) {
  const auto commits = scenario();
  write(3, 3);
  const std::uint64_t good = count_records(commits, 3);
  // Each case overwrites the records after `good`; each base starts from nothing (its ops are never
  // committed).
  const auto stops_at = [&](std::vector<WriteOp> bad, const std::string& why) {
    bad.push_back(WriteOp{Table::checkpoint, std::string(checkpoint_mark_key), u64_key(good + 2)});
    commit(bad);
    Status status;
    AuditBase base(*store_, status);
    WriteOps ops;
    base.advance(good + 2, ops);
    EXPECT_EQ(base.seq(), good) << why;
    EXPECT_NE(base.stopped_because().find(why), std::string::npos) << base.stopped_because();
  };
  // A charge S's balance cannot pay (refused by S).
  ChargeBatch overdraw;
  overdraw.chain = {ChainHop{root_s, c0}};
  overdraw.at = at(c0, 9);
  overdraw.events = {ChargeEvent{"evt_big", "assistants.reply", 1, 1'000'000'000'000, overdraw.at}};
  stops_at({WriteOp{Table::journal, u64_key(good + 1), encode(Record{overdraw})}}, describe(root_s));
  stops_at({WriteOp{Table::journal, u64_key(good + 1), "junk"}}, "does not decode");
  stops_at({WriteOp{Table::journal, u64_key(good + 1), {}, true},
            WriteOp{Table::journal, u64_key(good + 2), encode(Record{OrgRenamed{sub_a, "x"}})}},
           "gap before record " + std::to_string(good + 2));
}

TEST_F(JournalTrimTest, ABackupRacingTheTrimCopiesPartsThatBelongTogether) {
  // Between each two parts of the copy, the server journals more, checkpoints it, folds it into the
  // base and erases behind the base as far as it may: the worst a real race can do.
  const auto commits = scenario();
  std::size_t written = 5;
  options_.after_part_copied = [&](Part) {
    if (written == commits.size()) return;
    ASSERT_TRUE(writer_->commit(commits[written], true).ok());
    ++written;
    trim();
  };
  open();
  write(5, 5);
  trim();
  ASSERT_TRUE(store_->copy_compacted(dir_.str("copy")).ok());
  ASSERT_EQ(written, 8u);  // a step after each of the three parts
  const auto copy = check_copy(dir_.str("copy"));
  EXPECT_GE(copy.recovered.last_seq, count_records(commits, 7));  // the journal copied after two more steps
}
