// Goal: the usage buckets (persistence/usage_rollup.hpp) and the reports read from them
// (persistence/usage_query.hpp), on a real LMDB store, fed the way the persistence writer feeds them:
// journal records through a Materializer, their ops committed together.
//
// What must hold (domain/usage.hpp, CONTRACT.md "Usage"):
// - a charge counts in its ORIGIN org's buckets only (not in the orgs above it that paid or counted the
//   spend), on the UTC day the batch was accepted (ChargeBatch::at, not the events' occurred_at);
// - credits are money in: grants, top-ups (only succeeded), free credits at creation and at each cycle
//   start, transfers in (not out);
// - a report lists every day of its range, zeros included, sums by event type, and reads whole months
//   from the monthly buckets with the same answer the daily buckets give;
// - replaying records already counted (recovery after a crash) changes no bucket; a new record does.
//
// The scenario, by hand (money in micro-dollars; R is the root, A a consolidated sub-org, B a sub-org
// that pays for itself):
//   Nov 20 2026  R created with 5,000,000 free credits                      R credits
//   Nov 25       grant 10,000,000 to R                                      R credits
//   Nov 28 12:00 A: assistants.reply q3 100,000 + q1 50,000, broadcasts.sms q10 200,000 (paid by R)
//   Nov 30 12:00 transfer 2,000,000 R -> B                                  B credits (not R's)
//   Nov 30 23:59:59 R: inbox.message q1 25,000 (the month's last second)
//   Dec  1 00:00 R rolls into December with 5,000,000 free credits         R credits
//   Dec  1 00:00 A: assistants.reply q2 70,000
//   Dec  2 09:00 B: inbox.message q4 40,000 (B pays itself)
//   Dec  2 10:00 R: a failed top-up of 9,000,000                           nothing
//   Dec  3 15:00 A: broadcasts.sms q5 100,000 + assistants.reply q1 30,000, events that occurred Nov 29
//   Dec 31 23:00 top-up 3,000,000 to R                                     R credits
//   Jan  1 2027  R rolls into January with 5,000,000 free credits          R credits
//   Jan  2 08:00 A: assistants.reply q1 11,000
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/limits.hpp"
#include "domain/apply.hpp"
#include "domain/time.hpp"
#include "domain/usage.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"
#include "persistence/materializer.hpp"
#include "persistence/recovery.hpp"
#include "persistence/store.hpp"
#include "persistence/usage_query.hpp"
#include "persistence/usage_rollup.hpp"

using namespace canopy::domain;
using namespace canopy::persistence;

namespace usage_test {
namespace {

const UserId ann{201};
const OrgId root_r{101};
const OrgId sub_a{102};
const OrgId sub_b{103};
constexpr Micros allowance = 5'000'000;

constexpr Cycle nov = (2026 - 1970) * 12 + 10;
constexpr Cycle dec = nov + 1;
constexpr Cycle jan = nov + 2;

Timestamp at(const char* rfc3339) {
  const auto t = parse_rfc3339(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t.value_or(0);
}
Day day(int y, unsigned m, unsigned d) { return days_from_civil(CivilDate{y, m, d}); }
DayRange days(Day from, Day to) { return DayRange{from, to}; }

struct Ev {
  const char* type;
  std::uint64_t quantity;
  Micros cost;
};

// One accepted batch at `when`, from chain.front() (the origin) up to chain.back() (the payer).
ChargeBatch charge(std::vector<ChainHop> chain, Timestamp when, std::vector<Ev> events, Timestamp occurred = 0) {
  ChargeBatch batch;
  batch.chain = std::move(chain);
  batch.at = when;
  int n = 0;
  std::vector<ChargeEvent> charged;
  for (const Ev& e : events) {
    charged.push_back(ChargeEvent{"evt_" + std::to_string(when) + "_" + std::to_string(n++), e.type, e.quantity, e.cost,
                                  occurred ? occurred : when});
  }
  batch.events = std::move(charged);
  return batch;
}

PaymentRecorded payment(OrgId org, std::uint64_t id, PaymentKind kind, PaymentStatus status, Micros amount,
                        Timestamp when, std::string key = {}) {
  return PaymentRecorded{org, PaymentId{id}, kind, status, amount, when, std::move(key), "test"};
}

// The scenario of the file comment; each inner vector is one commit of the writer.
std::vector<std::vector<Record>> scenario() {
  return {
      {UserCreated{ann, "ann@example.com", "Ann", hash_token("cu_ann"), at("2026-11-20T10:00:00Z")},
       OrgCreated{root_r, OrgId::none, "Agency", Plan::business, ann, 0, at("2026-11-20T10:00:00Z"), nov, true,
                  allowance, PaymentId{301}},
       OrgCreated{sub_a, root_r, "Client A", std::nullopt, UserId::none, 1, at("2026-11-20T10:05:00Z"), nov, false, 0,
                  PaymentId::none},
       OrgCreated{sub_b, root_r, "Client B", std::nullopt, UserId::none, 1, at("2026-11-20T10:06:00Z"), nov, false, 0,
                  PaymentId::none}},
      {payment(root_r, 302, PaymentKind::grant, PaymentStatus::succeeded, 10'000'000, at("2026-11-25T09:00:00Z"))},
      {charge({{sub_a, nov}, {root_r, nov}}, at("2026-11-28T12:00:00Z"),
              {{"assistants.reply", 3, 100'000}, {"assistants.reply", 1, 50'000}, {"broadcasts.sms", 10, 200'000}})},
      {ConsolidatedSet{sub_b, false},
       TransferRecorded{root_r, sub_b, PaymentId{303}, PaymentId{304}, 2'000'000, at("2026-11-30T12:00:00Z"), "move-1"},
       charge({{root_r, nov}}, at("2026-11-30T23:59:59Z"), {{"inbox.message", 1, 25'000}})},
      {CycleRolled{root_r, dec, allowance, PaymentId{305}}, CycleRolled{sub_a, dec, 0, PaymentId::none},
       charge({{sub_a, dec}, {root_r, dec}}, at("2026-12-01T00:00:00Z"), {{"assistants.reply", 2, 70'000}})},
      {CycleRolled{sub_b, dec, 0, PaymentId::none},
       charge({{sub_b, dec}}, at("2026-12-02T09:00:00Z"), {{"inbox.message", 4, 40'000}}),
       payment(root_r, 306, PaymentKind::top_up, PaymentStatus::failed, 9'000'000, at("2026-12-02T10:00:00Z"), "t-1")},
      {charge({{sub_a, dec}, {root_r, dec}}, at("2026-12-03T15:00:00Z"),
              {{"broadcasts.sms", 5, 100'000}, {"assistants.reply", 1, 30'000}}, at("2026-11-29T08:00:00Z"))},
      {payment(root_r, 307, PaymentKind::top_up, PaymentStatus::succeeded, 3'000'000, at("2026-12-31T23:00:00Z"), "t-2")},
      {CycleRolled{root_r, jan, allowance, PaymentId{308}}, CycleRolled{sub_a, jan, 0, PaymentId::none},
       charge({{sub_a, jan}, {root_r, jan}}, at("2027-01-02T08:00:00Z"), {{"assistants.reply", 1, 11'000}})},
  };
}

std::size_t record_count(const std::vector<std::vector<Record>>& commits) {
  std::size_t n = 0;
  for (const auto& c : commits) n += c.size();
  return n;
}

// Every bucket in the store, by raw key.
using Buckets = std::map<std::string, std::string>;

class UsageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/canopy_usage_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    store_ = open();
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(root_);
  }

  std::unique_ptr<Store> open() {
    Status status;
    auto store = open_lmdb_store(root_ + "/data", LmdbOptions{}, status);
    EXPECT_TRUE(status.ok()) << status.message;
    return store;
  }

  // Writes commits the way the persistence writer does: journal rows and side rows in one commit; org
  // rows and the checkpoint mark when `checkpoint(i)` says so. The buckets, which the writer keeps
  // until a checkpoint or a report, with each commit, as if a report followed every one.
  template <class Checkpoint>
  void write(Materializer& m, const std::vector<std::vector<Record>>& commits, Checkpoint checkpoint) {
    for (std::size_t i = 0; i < commits.size(); ++i) {
      WriteOps ops;
      for (const Record& record : commits[i]) {
        const std::uint64_t seq = m.last_seq() + 1;
        ops.push_back(WriteOp{Table::journal, u64_key(seq), encode(record), false});
        const auto problem = m.add(seq, record, ops);
        ASSERT_FALSE(problem.has_value()) << "record " << seq << ": " << *problem;
      }
      m.write_all_usage(ops);
      if (checkpoint(i)) m.flush(ops);
      const Status s = store_->commit(ops.span());
      ASSERT_TRUE(s.ok()) << s.message;
    }
  }

  void write_scenario() {
    Materializer m(*store_);
    write(m, scenario(), [](std::size_t i) { return i == 0 || i == 4; });
  }

  UsageReport report(OrgId org, DayRange range) {
    UsageReport r = empty_report(range);
    const Status s = add_usage(*store_, org, range, r);
    EXPECT_TRUE(s.ok()) << s.message;
    return r;
  }

  Buckets buckets() {
    Buckets out;
    const Status s = store_->scan(Table::usage, {}, {}, [&](std::string_view k, std::string_view v) {
      out.emplace(std::string(k), std::string(v));
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.message;
    return out;
  }

  std::optional<Bucket> bucket(OrgId org, BucketKind kind, std::int32_t period, std::string_view type = {}) {
    std::string bytes;
    if (!store_->get(Table::usage, usage_key(raw(org), static_cast<std::uint8_t>(kind), period, type), bytes).ok()) {
      return std::nullopt;
    }
    return decode_bucket(bytes);
  }

  std::string root_;
  std::unique_ptr<Store> store_;
};

void expect_same_report(const UsageReport& got, const UsageReport& want, const std::string& what) {
  EXPECT_EQ(got.total_spend_micros, want.total_spend_micros) << what;
  EXPECT_EQ(got.total_credits_micros, want.total_credits_micros) << what;
  EXPECT_EQ(got.daily, want.daily) << what;
  ASSERT_EQ(got.by_type.size(), want.by_type.size()) << what;
  for (const auto& [type, w] : want.by_type) {
    ASSERT_TRUE(got.by_type.count(type)) << what << ": no " << type;
    const TypeUsage& g = got.by_type.at(type);
    EXPECT_EQ(g.count, w.count) << what << " " << type;
    EXPECT_EQ(g.quantity, w.quantity) << what << " " << type;
    EXPECT_EQ(g.spend_micros, w.spend_micros) << what << " " << type;
  }
}

void expect_type(const UsageReport& r, const std::string& type, std::uint64_t count, std::uint64_t quantity,
                 Micros spend) {
  ASSERT_TRUE(r.by_type.count(type)) << "no " << type << " in the report";
  EXPECT_EQ(r.by_type.at(type).count, count) << type;
  EXPECT_EQ(r.by_type.at(type).quantity, quantity) << type;
  EXPECT_EQ(r.by_type.at(type).spend_micros, spend) << type;
}

Micros sum(const std::vector<Micros>& v) {
  Micros s = 0;
  for (Micros x : v) s += x;
  return s;
}

}  // namespace

// --- what is counted where ------------------------------------------------------------------------

TEST_F(UsageStoreTest, AReportAcrossTheMonthEndHasEveryDayAndSumsByType) {
  write_scenario();
  // Nov 28 .. Dec 3: neither month is whole, so every number comes from the daily buckets.
  const auto r = report(sub_a, days(day(2026, 11, 28), day(2026, 12, 3)));
  EXPECT_EQ(r.range, days(day(2026, 11, 28), day(2026, 12, 3)));
  EXPECT_EQ(r.daily, (std::vector<Micros>{350'000, 0, 0, 70'000, 0, 130'000}));
  EXPECT_EQ(r.total_spend_micros, 550'000);
  EXPECT_EQ(r.total_credits_micros, 0);
  ASSERT_EQ(r.by_type.size(), 2u);
  expect_type(r, "assistants.reply", 4, 7, 250'000);
  expect_type(r, "broadcasts.sms", 2, 15, 300'000);
  // In name order.
  EXPECT_EQ(r.by_type.begin()->first, "assistants.reply");
}

TEST_F(UsageStoreTest, AChargeCountsOnlyAtItsOriginNotAtTheOrgsThatPaidOrCountedTheSpend) {
  write_scenario();
  const DayRange november = days(day(2026, 11, 1), day(2026, 11, 30));
  // R paid for (and counted in its cycle spend) A's 350,000 on Nov 28; its own usage is its own event.
  const auto r = report(root_r, november);
  EXPECT_EQ(r.total_spend_micros, 25'000);
  ASSERT_EQ(r.by_type.size(), 1u);
  expect_type(r, "inbox.message", 1, 1, 25'000);
  EXPECT_EQ(r.daily[27], 0) << "Nov 28 is A's charge, not R's";
  EXPECT_EQ(r.daily[29], 25'000);
}

TEST_F(UsageStoreTest, AChargeCountsOnTheDayItWasAcceptedNotWhenItsEventsOccurred) {
  write_scenario();
  // The Dec 3 batch holds events that occurred on Nov 29.
  const auto nov29 = report(sub_a, days(day(2026, 11, 29), day(2026, 11, 29)));
  EXPECT_EQ(nov29.total_spend_micros, 0);
  EXPECT_TRUE(nov29.by_type.empty());
  const auto dec3 = report(sub_a, days(day(2026, 12, 3), day(2026, 12, 3)));
  EXPECT_EQ(dec3.total_spend_micros, 130'000);
  expect_type(dec3, "broadcasts.sms", 1, 5, 100'000);
  expect_type(dec3, "assistants.reply", 1, 1, 30'000);
}

TEST_F(UsageStoreTest, TheLastSecondOfAMonthAndTheFirstOfTheNextCountOnTheirOwnDays) {
  write_scenario();
  const auto r = report(root_r, days(day(2026, 11, 30), day(2026, 12, 1)));
  EXPECT_EQ(r.daily, (std::vector<Micros>{25'000, 0}));
  const auto a = report(sub_a, days(day(2026, 11, 30), day(2026, 12, 1)));
  EXPECT_EQ(a.daily, (std::vector<Micros>{0, 70'000}));
  // And in the months' own buckets.
  EXPECT_EQ(bucket(root_r, BucketKind::usage_month, nov, "inbox.message").value_or(Bucket{}).micros, 25'000);
  EXPECT_FALSE(bucket(root_r, BucketKind::usage_month, dec, "inbox.message"));
  EXPECT_EQ(bucket(sub_a, BucketKind::usage_month, dec, "assistants.reply").value_or(Bucket{}).micros, 70'000 + 30'000);
}

TEST_F(UsageStoreTest, CreditsAreGrantsTopUpsFreeCreditsAndTransfersInButNotFailuresOrTransfersOut) {
  write_scenario();
  const DayRange nov_dec = days(day(2026, 11, 1), day(2026, 12, 31));
  // R: 5M free at creation + 10M grant + 5M free on Dec 1 + 3M top-up; the failed 9M top-up and the
  // 2M it transferred out are not credits.
  EXPECT_EQ(report(root_r, nov_dec).total_credits_micros, allowance + 10'000'000 + allowance + 3'000'000);
  // B: the transfer in.
  EXPECT_EQ(report(sub_b, nov_dec).total_credits_micros, 2'000'000);
  // A: nothing in (sub-orgs get no free allowance).
  EXPECT_EQ(report(sub_a, nov_dec).total_credits_micros, 0);
}

TEST_F(UsageStoreTest, CreditsCountOnTheirOwnDay) {
  write_scenario();
  const auto on = [&](OrgId org, Day d) { return report(org, days(d, d)).total_credits_micros; };
  EXPECT_EQ(on(root_r, day(2026, 11, 20)), allowance);
  EXPECT_EQ(on(root_r, day(2026, 11, 25)), 10'000'000);
  EXPECT_EQ(on(root_r, day(2026, 11, 30)), 0);  // the transfer out
  EXPECT_EQ(on(sub_b, day(2026, 11, 30)), 2'000'000);
  EXPECT_EQ(on(root_r, day(2026, 12, 1)), allowance);  // the cycle's free credits, on its first day
  EXPECT_EQ(on(root_r, day(2026, 12, 2)), 0);          // the failed top-up
  EXPECT_EQ(on(root_r, day(2026, 12, 31)), 3'000'000);
  EXPECT_EQ(on(root_r, day(2027, 1, 1)), allowance);
}

TEST_F(UsageStoreTest, ASelfPayingSubOrgsChargesAreItsOwn) {
  write_scenario();
  const auto b = report(sub_b, days(day(2026, 12, 1), day(2026, 12, 31)));
  EXPECT_EQ(b.total_spend_micros, 40'000);
  EXPECT_EQ(b.daily[1], 40'000);
  expect_type(b, "inbox.message", 1, 4, 40'000);
}

TEST_F(UsageStoreTest, AWholeMonthReadFromItsMonthlyBucketsAgreesWithItsDays) {
  write_scenario();
  for (const OrgId org : {root_r, sub_a, sub_b}) {
    SCOPED_TRACE(to_string(org));
    // Dec 1..31 is one whole month: by type and credits come from the monthly buckets. The same days
    // as two partial ranges come from the daily buckets only.
    const auto whole = report(org, days(day(2026, 12, 1), day(2026, 12, 31)));
    UsageReport by_days = empty_report(days(day(2026, 12, 1), day(2026, 12, 31)));
    UsageReport first = report(org, days(day(2026, 12, 1), day(2026, 12, 30)));
    UsageReport last = report(org, days(day(2026, 12, 31), day(2026, 12, 31)));
    by_days.total_spend_micros = first.total_spend_micros + last.total_spend_micros;
    by_days.total_credits_micros = first.total_credits_micros + last.total_credits_micros;
    for (std::size_t i = 0; i < 30; ++i) by_days.daily[i] = first.daily[i];
    by_days.daily[30] = last.daily[0];
    by_days.by_type = first.by_type;
    for (const auto& [type, t] : last.by_type) {
      auto& s = by_days.by_type[type];
      s.count += t.count;
      s.quantity += t.quantity;
      s.spend_micros += t.spend_micros;
    }
    expect_same_report(whole, by_days, "December");
    // The total is the sum of the days, and the sum of the types.
    EXPECT_EQ(whole.total_spend_micros, sum(whole.daily));
    Micros by_type = 0;
    for (const auto& [type, t] : whole.by_type) by_type += t.spend_micros;
    EXPECT_EQ(whole.total_spend_micros, by_type);
  }
}

TEST_F(UsageStoreTest, ARangeOverAYearEndReadsTheWholeMonthInTheMiddleAndTheEdgesByDay) {
  write_scenario();
  // Nov 28 .. Jan 2: December whole (monthly buckets), Nov 28..30 and Jan 1..2 by day.
  const DayRange range = days(day(2026, 11, 28), day(2027, 1, 2));
  ASSERT_EQ(plan_range(range).months, std::vector<Cycle>{dec});
  const auto a = report(sub_a, range);
  ASSERT_EQ(a.daily.size(), 36u);
  EXPECT_EQ(a.daily.front(), 350'000);
  EXPECT_EQ(a.daily[3], 70'000);    // Dec 1
  EXPECT_EQ(a.daily[5], 130'000);   // Dec 3
  EXPECT_EQ(a.daily.back(), 11'000);  // Jan 2
  EXPECT_EQ(sum(a.daily), 350'000 + 70'000 + 130'000 + 11'000);
  EXPECT_EQ(a.total_spend_micros, 561'000);
  expect_type(a, "assistants.reply", 5, 8, 261'000);
  expect_type(a, "broadcasts.sms", 2, 15, 300'000);
  const auto r = report(root_r, range);
  EXPECT_EQ(r.total_spend_micros, 25'000);
  EXPECT_EQ(r.total_credits_micros, allowance + 3'000'000 + allowance);  // Dec 1, Dec 31, Jan 1
}

TEST_F(UsageStoreTest, ThreeWholeMonthsAreTheSumOfEachMonth) {
  write_scenario();
  const auto all = report(root_r, days(day(2026, 11, 1), day(2027, 1, 31)));
  EXPECT_EQ(plan_range(all.range).months, (std::vector<Cycle>{nov, dec, jan}));
  EXPECT_EQ(all.total_credits_micros, allowance + 10'000'000 + allowance + 3'000'000 + allowance);
  const auto a = report(sub_a, days(day(2026, 11, 1), day(2027, 1, 31)));
  EXPECT_EQ(a.total_spend_micros, 561'000);
  expect_type(a, "assistants.reply", 5, 8, 261'000);
  expect_type(a, "broadcasts.sms", 2, 15, 300'000);
}

TEST_F(UsageStoreTest, ARangeWithNothingInItIsAllZerosWithEveryDay) {
  write_scenario();
  const auto r = report(sub_a, days(day(2027, 2, 1), day(2027, 3, 31)));
  EXPECT_EQ(r.daily, std::vector<Micros>(59, 0));
  EXPECT_EQ(r.total_spend_micros, 0);
  EXPECT_EQ(r.total_credits_micros, 0);
  EXPECT_TRUE(r.by_type.empty());
  // An org that never existed reads the same.
  const auto ghost = report(OrgId{999}, days(day(2026, 11, 1), day(2026, 12, 31)));
  EXPECT_EQ(ghost.total_spend_micros, 0);
  EXPECT_EQ(ghost.daily, std::vector<Micros>(61, 0));
}

TEST_F(UsageStoreTest, OneOrgsBucketsNeverLeakIntoItsNeighboursReport) {
  write_scenario();
  // Org ids are adjacent (101, 102, 103): a scan that overran its prefix would pick up the next org.
  const DayRange all = days(day(2026, 11, 1), day(2027, 1, 31));
  EXPECT_EQ(report(root_r, all).total_spend_micros, 25'000);
  EXPECT_EQ(report(sub_a, all).total_spend_micros, 561'000);
  EXPECT_EQ(report(sub_b, all).total_spend_micros, 40'000);
}

TEST_F(UsageStoreTest, ReportsOfSeveralOrgsAddUp) {
  write_scenario();
  const DayRange range = days(day(2026, 11, 28), day(2027, 1, 2));
  UsageReport total = empty_report(range);
  for (const OrgId org : {root_r, sub_a, sub_b}) ASSERT_TRUE(add_usage(*store_, org, range, total).ok());
  EXPECT_EQ(total.total_spend_micros, 25'000 + 561'000 + 40'000);
  EXPECT_EQ(total.total_credits_micros, 2'000'000 + allowance + 3'000'000 + allowance);
  EXPECT_EQ(total.daily[2], 25'000);             // Nov 30: R
  EXPECT_EQ(total.daily[4], 40'000);             // Dec 2: B
  expect_type(total, "inbox.message", 2, 5, 65'000);
  expect_type(total, "assistants.reply", 5, 8, 261'000);
}

TEST_F(UsageStoreTest, BucketsHoldCountsQuantitiesMoneyAndTheLastSeqCounted) {
  write_scenario();
  // Seqs: commit 0 holds 1..4, grant 5, Nov 28 charge 6.
  const auto reply = bucket(sub_a, BucketKind::usage_day, day(2026, 11, 28), "assistants.reply");
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, (Bucket{2, 4, 150'000, 6}));
  const auto spend = bucket(sub_a, BucketKind::spend_day, day(2026, 11, 28));
  ASSERT_TRUE(spend);
  EXPECT_EQ(*spend, (Bucket{3, 14, 350'000, 6}));
  const auto credits = bucket(root_r, BucketKind::credits_month, nov);
  ASSERT_TRUE(credits);
  EXPECT_EQ(credits->count, 2u);  // the free credits and the grant
  EXPECT_EQ(credits->micros, allowance + 10'000'000);
  EXPECT_EQ(credits->last_seq, 5u);
  // A failed payment makes no bucket at all.
  EXPECT_FALSE(bucket(root_r, BucketKind::credits_day, day(2026, 12, 2)));
}

// --- replay never counts twice ----------------------------------------------------------------------

TEST_F(UsageStoreTest, ReplayingEveryRecordThroughAFreshMaterializerChangesNoBucket) {
  write_scenario();
  const Buckets before = buckets();
  ASSERT_FALSE(before.empty());
  Materializer again(*store_);
  WriteOps ops;
  std::uint64_t seq = 0;
  for (const auto& commit : scenario()) {
    for (const Record& record : commit) {
      const auto problem = again.add(++seq, record, ops);
      ASSERT_FALSE(problem.has_value()) << *problem;
    }
  }
  again.write_all_usage(ops);
  for (const WriteOp& op : ops) EXPECT_NE(op.table, Table::usage) << "a replayed record rewrote a bucket";
  ASSERT_TRUE(store_->commit(ops.span()).ok());
  EXPECT_EQ(buckets(), before);
}

TEST_F(UsageStoreTest, ReplayingOneRecordTwiceThroughTheRollupAddsNothing) {
  write_scenario();
  const Buckets before = buckets();
  // Without any cache: every bucket is read back from the store and its last_seq checked.
  const auto commits = scenario();
  UsageRollup rollup(*store_);
  WriteOps ops;
  const auto now = std::chrono::steady_clock::now();
  rollup.add(6, commits[2][0], now);  // the Nov 28 charge, seq 6
  rollup.add(6, commits[2][0], now);
  // A record older than the bucket's last one is skipped too.
  rollup.add(1, commits[2][0], now);
  EXPECT_EQ(rollup.dirty(), 0u);
  rollup.write_all(ops);
  EXPECT_TRUE(ops.empty());
  ASSERT_TRUE(store_->commit(ops.span()).ok());
  EXPECT_EQ(buckets(), before);
}

TEST_F(UsageStoreTest, ARecordWithAHigherSeqIsCounted) {
  write_scenario();
  RecoveryResult recovered;  // brings the org rows up to the journal's end, as at a restart
  ASSERT_TRUE(recover(*store_, recovered).ok());
  const Buckets before = buckets();
  const std::uint64_t last = record_count(scenario());
  ASSERT_EQ(recovered.last_seq, last);
  Materializer m(*store_);
  m.set_last_seq(last);
  WriteOps ops;
  const Record more = charge({{sub_a, jan}, {root_r, jan}}, at("2027-01-02T09:00:00Z"), {{"assistants.reply", 2, 9'000}});
  ASSERT_FALSE(m.add(last + 1, more, ops).has_value());
  m.write_all_usage(ops);
  ASSERT_TRUE(store_->commit(ops.span()).ok());
  EXPECT_NE(buckets(), before);
  const auto b = bucket(sub_a, BucketKind::usage_day, day(2027, 1, 2), "assistants.reply");
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, (Bucket{2, 3, 20'000, last + 1}));
  const auto r = report(sub_a, days(day(2027, 1, 1), day(2027, 1, 31)));
  EXPECT_EQ(r.total_spend_micros, 20'000);
  expect_type(r, "assistants.reply", 2, 3, 20'000);
  // Only the buckets the new charge touches changed: A's day, month and daily-total buckets.
  const Buckets after = buckets();
  std::size_t changed = 0;
  for (const auto& [k, v] : after) {
    const auto it = before.find(k);
    if (it == before.end() || it->second != v) ++changed;
  }
  EXPECT_EQ(changed, 3u);
}

// The process dies after the last commit; the last checkpoint was at commit 4. Recovery replays the
// tail (records already counted in the buckets) through a new Materializer: nothing counts twice.
TEST_F(UsageStoreTest, RecoveryReplayingTheJournalTailCountsNothingTwice) {
  write_scenario();
  const Buckets before = buckets();
  store_.reset();
  store_ = open();
  ASSERT_NE(store_, nullptr);
  RecoveryResult result;
  ASSERT_TRUE(recover(*store_, result).ok());
  ASSERT_GT(result.replayed_records, 0u);
  EXPECT_EQ(result.last_seq, record_count(scenario()));
  EXPECT_EQ(buckets(), before);
  EXPECT_EQ(report(sub_a, days(day(2026, 11, 1), day(2027, 1, 31))).total_spend_micros, 561'000);
}

// Buckets agree with the money: an org's usage over a cycle is the spend its own charges added, which
// is its cycle spend when every charge on its chain originated there.
TEST_F(UsageStoreTest, AMonthsSpendIsTheCycleSpendOfAnOrgWhoseChargesAllOriginateThere) {
  write_scenario();
  RecoveryResult result;
  ASSERT_TRUE(recover(*store_, result).ok());
  // B is the only org on its chain in December (self-paying, no sub-orgs).
  const auto b = load_org(*store_, sub_b);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->cycle, dec);
  EXPECT_EQ(report(sub_b, days(day(2026, 12, 1), day(2026, 12, 31))).total_spend_micros, b->cycle_spend_micros);
  // A has no sub-orgs either: its January usage is its January cycle spend.
  const auto a = load_org(*store_, sub_a);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->cycle, jan);
  EXPECT_EQ(report(sub_a, days(day(2027, 1, 1), day(2027, 1, 31))).total_spend_micros, a->cycle_spend_micros);
}

// Buckets wait in the writer's memory for a checkpoint (or a report). When an org's snapshot is
// written with a grant in it but the grant's buckets are not due yet, the mark stays below the grant
// (charges also wait for their event ids; a grant has none), so a crash then loses nothing and
// recovery counts the grant into its buckets once.
TEST_F(UsageStoreTest, BucketsWaitForTheirCheckpointAndACrashBeforeThenCountsThemOnce) {
  const auto t0 = std::chrono::steady_clock::now();
  const Record late = payment(root_r, 390, PaymentKind::grant, PaymentStatus::succeeded, 4'000'000,
                              at("2026-11-26T08:00:00Z"));
  std::uint64_t grant_seq = 0;
  {
    Materializer m(*store_);
    write(m, {scenario()[0]}, [](std::size_t) { return true; });  // the orgs, written
    const auto add = [&](const Record& record, WriteOps& ops) {
      const std::uint64_t seq = m.last_seq() + 1;
      ops.push_back(WriteOp{Table::journal, u64_key(seq), encode(record), false});
      EXPECT_FALSE(m.add(seq, record, ops).has_value());
      return seq;
    };
    WriteOps ops;
    m.set_now(t0);
    add(LimitSet{root_r, 50'000'000}, ops);  // R dirty since t0 (no bucket)
    EXPECT_EQ(m.flush_due(ops, t0 - std::chrono::seconds(1), SIZE_MAX), 0u) << "nothing due yet";
    ASSERT_TRUE(store_->commit(ops.span()).ok());
    ops.clear();
    m.set_now(t0 + std::chrono::seconds(10));
    grant_seq = add(late, ops);  // R's credit buckets dirty since t0 + 10 s
    for (const WriteOp& op : ops) EXPECT_NE(op.table, Table::usage) << "a bucket written with its record";
    EXPECT_EQ(m.flush_due(ops, t0 + std::chrono::seconds(1), SIZE_MAX), 1u) << "R, dirty since t0, is due";
    ASSERT_TRUE(store_->commit(ops.span()).ok());
    EXPECT_FALSE(bucket(root_r, BucketKind::credits_day, day(2026, 11, 26))) << "the grant's buckets are not due";
    EXPECT_EQ(m.usage_buckets_dirty(), 2u);
    std::string mark;
    ASSERT_TRUE(store_->get(Table::checkpoint, checkpoint_mark_key, mark).ok());
    EXPECT_EQ(get_u64_be(mark), grant_seq - 1) << "R's snapshot holds the grant, its buckets do not";
  }  // the process is gone
  store_.reset();
  store_ = open();
  RecoveryResult result;
  ASSERT_TRUE(recover(*store_, result).ok());
  EXPECT_EQ(result.last_seq, grant_seq);
  const auto r = report(root_r, days(day(2026, 11, 26), day(2026, 11, 26)));
  EXPECT_EQ(r.total_credits_micros, 4'000'000) << "counted once, by recovery";
  EXPECT_EQ(load_org(*store_, root_r)->balance_micros, allowance + 4'000'000) << "granted once";
}

// A checkpoint slice ends only where the org changes: a report reading between two slices sees each
// record in all of its buckets or in none (a charge's buckets are all its origin's).
TEST_F(UsageStoreTest, ACheckpointSliceNeverSplitsAnOrgsBuckets) {
  UsageRollup rollup(*store_);
  const auto now = std::chrono::steady_clock::now();
  const auto when = at("2026-11-21T10:00:00Z");
  rollup.add(1, charge({{sub_a, nov}, {root_r, nov}}, when, {{"assistants.reply", 1, 1'000}, {"inbox.message", 1, 2'000}}),
             now);
  rollup.add(2, charge({{sub_b, nov}, {root_r, nov}}, when, {{"inbox.message", 1, 3'000}}), now);
  ASSERT_EQ(rollup.dirty(), 8u);  // A: 2 types x (day, month) + total; B: 1 type x 2 + total
  WriteOps ops;
  EXPECT_EQ(rollup.write_due(ops, now, 1), 5u) << "asked for one row, a slice takes all of its first org's";
  EXPECT_EQ(rollup.dirty(), 3u) << "B's wait for the next slice";
  EXPECT_EQ(rollup.low_water(2), 1u) << "B's record is not in the store yet";
  ops.clear();
  EXPECT_EQ(rollup.write_due(ops, now, 1), 3u);
  EXPECT_EQ(rollup.low_water(2), 2u);
}

// A report of one org writes that org's waiting buckets and no other's.
TEST_F(UsageStoreTest, AReportWritesTheWaitingBucketsOfItsOrgsOnly) {
  Materializer m(*store_);
  write(m, {scenario()[0]}, [](std::size_t) { return true; });
  WriteOps ops;
  ASSERT_FALSE(m.add(m.last_seq() + 1, charge({{sub_a, nov}, {root_r, nov}}, at("2026-11-21T10:00:00Z"),
                                               {{"assistants.reply", 1, 1'000}}), ops).has_value());
  ASSERT_FALSE(m.add(m.last_seq() + 1, charge({{sub_b, nov}, {root_r, nov}}, at("2026-11-21T10:00:00Z"),
                                               {{"inbox.message", 1, 2'000}}), ops).has_value());
  m.write_usage_of(sub_a, ops);
  ASSERT_TRUE(store_->commit(ops.span()).ok());
  EXPECT_EQ(report(sub_a, days(day(2026, 11, 21), day(2026, 11, 21))).total_spend_micros, 1'000);
  EXPECT_EQ(report(sub_b, days(day(2026, 11, 21), day(2026, 11, 21))).total_spend_micros, 0) << "still waiting";
  EXPECT_EQ(m.usage_buckets_dirty(), 3u);
}

TEST_F(UsageStoreTest, ManyEventsOfOneTypeInOneBatchAreOneWritePerBucket) {
  Materializer m(*store_);
  write(m, {scenario()[0]}, [](std::size_t) { return true; });
  std::vector<Ev> events(50, Ev{"assistants.reply", 2, 1'000});
  events.push_back(Ev{"inbox.message", 1, 500});
  WriteOps ops;
  ASSERT_FALSE(m.add(m.last_seq() + 1, charge({{root_r, nov}}, at("2026-11-21T10:00:00Z"), events), ops).has_value());
  m.write_all_usage(ops);
  std::size_t usage_ops = 0;
  for (const WriteOp& op : ops) usage_ops += op.table == Table::usage;
  EXPECT_EQ(usage_ops, 5u);  // 2 types x (day, month) + the day's total
  ASSERT_TRUE(store_->commit(ops.span()).ok());
  const auto r = report(root_r, days(day(2026, 11, 21), day(2026, 11, 21)));
  expect_type(r, "assistants.reply", 50, 100, 50'000);
  expect_type(r, "inbox.message", 1, 1, 500);
  EXPECT_EQ(r.total_spend_micros, 50'500);
}

// --- the rollup's cache ----------------------------------------------------------------------------

// Past limits::usage_rollup_cache_max clean buckets the rollup forgets some; a forgotten bucket is
// read back from the store at its next charge and counted on from there, never from zero and never
// twice, and the buckets it kept count on in memory.
TEST_F(UsageStoreTest, AForgottenBucketIsReadBackAndCountedOnFromWhatTheStoreHas) {
  UsageRollup rollup(*store_);
  const auto now = std::chrono::steady_clock::now();
  const Timestamp when = at("2026-11-21T10:00:00Z");
  // Three buckets per org (its day and month of one type, its day's total).
  const std::uint64_t orgs = canopy::limits::usage_rollup_cache_max / 3 + 100;
  std::uint64_t seq = 0;
  for (std::uint64_t i = 0; i < orgs; ++i) {
    rollup.add(++seq, charge({{OrgId{1000 + i}, nov}}, when, {{"assistants.reply", 1, 10}}), now);
  }
  WriteOps ops;
  rollup.write_all(ops);
  ASSERT_TRUE(store_->commit(ops.span()).ok());
  ASSERT_EQ(rollup.forgets(), 0u);
  rollup.trim();
  ASSERT_EQ(rollup.forgets(), 1u);
  // The first and the last org: whichever the rollup forgot, both count their second charge on.
  for (const OrgId org : {OrgId{1000}, OrgId{1000 + orgs - 1}}) {
    rollup.add(++seq, charge({{org, nov}}, when + 1, {{"assistants.reply", 2, 5}}), now);
    rollup.add(seq, charge({{org, nov}}, when + 1, {{"assistants.reply", 2, 5}}), now);  // replayed: no change
  }
  WriteOps more;
  rollup.write_all(more);
  EXPECT_EQ(more.size(), 6u);
  ASSERT_TRUE(store_->commit(more.span()).ok());
  for (const OrgId org : {OrgId{1000}, OrgId{1000 + orgs - 1}}) {
    const auto b = bucket(org, BucketKind::usage_day, day(2026, 11, 21), "assistants.reply");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->count, 2u) << raw(org);
    EXPECT_EQ(b->quantity, 3u) << raw(org);
    EXPECT_EQ(b->micros, 15) << raw(org);
  }
}

}  // namespace usage_test
