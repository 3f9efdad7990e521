// Goal: the charge decision (domain/charge.hpp) and the ChargeBatch record that carries it
// (domain/apply.hpp) admit exactly what CONTRACT.md "Usage (the hot path)" steps 2-3 admit, and no
// admitted charge ever leaves a cycle spend above a monthly limit or a balance below zero.
//
// The rule, as these tests state it independently of charge.cpp:
//   - at every org from the origin up to the payer that has a monthly limit: the org is not paused
//     (not flagged this cycle, spend not already at the limit) and
//     cycle spend + spend reserved by events in flight + cost <= limit;
//   - at the payer: balance - debits reserved by events in flight >= cost;
//   - once accepted, every org on the chain adds the cost to its cycle spend (if it admitted the event
//     in the cycle it is still in) and the payer's balance drops by the cost. Nothing else moves.
// The exhaustive tests walk every combination of a small value grid over chains of 1..5 orgs.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "domain/apply.hpp"
#include "domain/charge.hpp"
#include "domain/time.hpp"

using namespace canopy::domain;

namespace {

constexpr Cycle this_cycle = 682;  // November 2026
constexpr Micros free_allowance = 5'000'000;
constexpr Micros other_orgs_balance = 1'000;  // own balance of consolidated orgs: charges never touch it

// One org of the chain as its actor sees it when the event reaches it.
struct Hop {
  std::optional<Micros> limit;
  Micros spend = 0;
  Micros reserved = 0;  // spend reserved by other events still in flight through this org
  bool paused_flag = false;
};

struct ChainCase {
  std::vector<Hop> hops;  // front: the origin, back: the payer
  Micros balance = 0;         // the payer's
  Micros debit_reserved = 0;  // the payer's debits promised to other events in flight
  Micros cost = 0;
};

struct Decision {
  std::optional<std::size_t> refused_at;  // index into the chain; nullopt: accepted
  Refusal refusal = Refusal::none;
  friend bool operator==(const Decision&, const Decision&) = default;
};

std::string describe(const ChainCase& c) {
  std::ostringstream out;
  out << "cost " << c.cost << ", payer balance " << c.balance << " (debits reserved " << c.debit_reserved
      << "), chain:";
  for (const Hop& h : c.hops) {
    out << " [limit " << (h.limit ? std::to_string(*h.limit) : "none") << " spend " << h.spend << " reserved "
        << h.reserved << (h.paused_flag ? " paused" : "") << "]";
  }
  return out.str();
}

std::string describe(const Decision& d) {
  if (!d.refused_at) return "accepted";
  return "refused at hop " + std::to_string(*d.refused_at) + " with refusal " +
         std::to_string(static_cast<int>(d.refusal));
}

// CONTRACT.md steps 2-3, written out without calling charge.cpp. Walking up from the origin, the first
// org that cannot admit is the one named in the refusal; the balance is looked at only after every
// limit on the chain passed.
Decision contract_rule(const ChainCase& c) {
  for (std::size_t i = 0; i < c.hops.size(); ++i) {
    const Hop& h = c.hops[i];
    if (!h.limit) continue;
    if (h.paused_flag || h.spend >= *h.limit) return {i, Refusal::paused};
    if (h.spend + h.reserved + c.cost > *h.limit) return {i, Refusal::limit_reached};
  }
  if (c.balance - c.debit_reserved < c.cost) return {c.hops.size() - 1, Refusal::insufficient_credits};
  return {};
}

OrgState org_for_hop(const ChainCase& c, std::size_t i) {
  const std::size_t n = c.hops.size();
  const bool is_payer = i + 1 == n;
  OrgState org;
  org.id = OrgId{i + 1};
  org.parent = is_payer ? OrgId::none : OrgId{i + 2};
  org.depth = static_cast<std::uint8_t>(n - 1 - i);
  org.consolidated = !is_payer;
  org.cycle = this_cycle;
  org.monthly_limit_micros = c.hops[i].limit;
  org.cycle_spend_micros = c.hops[i].spend;
  org.paused_flag = c.hops[i].paused_flag;
  org.balance_micros = is_payer ? c.balance : other_orgs_balance;
  return org;
}

std::vector<OrgState> make_chain(const ChainCase& c) {
  std::vector<OrgState> orgs;
  orgs.reserve(c.hops.size());
  for (std::size_t i = 0; i < c.hops.size(); ++i) orgs.push_back(org_for_hop(c, i));
  return orgs;
}

InFlight in_flight_at(const ChainCase& c, std::size_t i) {
  const bool is_payer = i + 1 == c.hops.size();
  return InFlight{c.hops[i].reserved, is_payer ? c.debit_reserved : 0};
}

// The decision as the org actors take it: each org checks its own limit part on the way up, the payer
// then checks its balance.
Decision decide(const std::vector<OrgState>& orgs, const ChainCase& c) {
  for (std::size_t i = 0; i < orgs.size(); ++i) {
    const Refusal r = admit_limit(orgs[i], in_flight_at(c, i), c.cost);
    if (r != Refusal::none) return {i, r};
  }
  const std::size_t payer = orgs.size() - 1;
  const Refusal r = admit_balance(orgs[payer], in_flight_at(c, payer), c.cost);
  if (r != Refusal::none) return {payer, r};
  return {};
}

ChargeBatch batch_for(const std::vector<OrgState>& orgs, const std::vector<Micros>& costs) {
  ChargeBatch batch;
  for (const OrgState& org : orgs) batch.chain.push_back(ChainHop{org.id, org.cycle});
  batch.at = cycle_start(this_cycle) + 3600;
  std::vector<ChargeEvent> events;
  for (std::size_t k = 0; k < costs.size(); ++k) {
    events.push_back(ChargeEvent{"evt_" + std::to_string(k), "assistants.reply", 1, costs[k], batch.at});
  }
  batch.events = std::move(events);
  return batch;
}

void apply_to_chain(std::vector<OrgState>& orgs, const ChargeBatch& batch) {
  const Record record{batch};
  for (OrgState& org : orgs) canopy::domain::apply(org, record);
}

// Checks one accepted case after its ChargeBatch was applied; returns a description of the first
// thing that is wrong.
std::optional<std::string> check_after_accept(const ChainCase& c, const std::vector<OrgState>& after) {
  const std::size_t payer = after.size() - 1;
  for (std::size_t i = 0; i < after.size(); ++i) {
    const OrgState& org = after[i];
    const Hop& h = c.hops[i];
    if (org.cycle_spend_micros != h.spend + c.cost) return "hop " + std::to_string(i) + ": spend not increased by cost";
    if (h.limit && org.cycle_spend_micros + h.reserved > *h.limit) {
      return "hop " + std::to_string(i) + ": spend (with what is still in flight) passed the limit";
    }
    const Micros want_balance = i == payer ? c.balance - c.cost : other_orgs_balance;
    if (org.balance_micros != want_balance) return "hop " + std::to_string(i) + ": wrong balance";
    if (auto broken = check_invariants(org)) return "hop " + std::to_string(i) + ": " + *broken;
  }
  if (after[payer].balance_micros - c.debit_reserved < 0) {
    return "payer balance no longer covers the debits still in flight";
  }
  return std::nullopt;
}

// Runs one case; counts it and reports (at most a few) failures with the whole case spelled out.
struct Exhaustive {
  std::size_t cases = 0;
  std::size_t accepted = 0;
  std::size_t failures = 0;

  void run(const ChainCase& c) {
    ++cases;
    std::vector<OrgState> orgs = make_chain(c);
    const Decision want = contract_rule(c);
    const Decision got = decide(orgs, c);
    if (got != want) {
      fail(describe(c) + ": expected " + describe(want) + ", got " + describe(got));
      return;
    }
    if (got.refused_at) return;
    ++accepted;
    const ChargeBatch batch = batch_for(orgs, {c.cost});
    for (const OrgState& org : orgs) {
      if (auto refusal = apply_refusal(org, Record{batch})) {
        fail(describe(c) + ": accepted, but the record is refused at " + to_string(org.id) + ": " + *refusal);
        return;
      }
    }
    apply_to_chain(orgs, batch);
    if (auto wrong = check_after_accept(c, orgs)) fail(describe(c) + ": " + *wrong);
  }

  void fail(const std::string& what) {
    if (++failures <= 10) ADD_FAILURE() << what;
  }
};

// Every hop drawn from `grid`, every chain length in [min_len, max_len], every payer state and cost.
void enumerate(const std::vector<Hop>& grid, std::size_t min_len, std::size_t max_len, Exhaustive& ex) {
  const std::vector<std::pair<Micros, Micros>> payer_states = {{0, 0}, {3, 0}, {4, 0}, {9, 0},
                                                               {3, 1}, {4, 1}, {5, 1}, {9, 4}};
  const std::vector<Micros> costs = {0, 1, 3, 4, 5};
  for (std::size_t len = min_len; len <= max_len; ++len) {
    std::vector<std::size_t> pick(len, 0);
    while (true) {
      ChainCase c;
      for (std::size_t k : pick) c.hops.push_back(grid[k]);
      for (const auto& [balance, debit] : payer_states) {
        for (Micros cost : costs) {
          c.balance = balance;
          c.debit_reserved = debit;
          c.cost = cost;
          ex.run(c);
        }
      }
      std::size_t k = 0;
      while (k < len && ++pick[k] == grid.size()) pick[k++] = 0;
      if (k == len) break;
    }
  }
}

// Limits none, 0 and 4; spends up to the limit; one unit reserved or none; paused or not.
std::vector<Hop> full_hop_grid() {
  std::vector<Hop> grid;
  for (Micros spend : {0, 4}) {
    for (Micros reserved : {0, 1}) grid.push_back(Hop{std::nullopt, spend, reserved, false});
  }
  for (Micros reserved : {0, 1}) {
    for (bool paused : {false, true}) grid.push_back(Hop{0, 0, reserved, paused});
  }
  for (Micros spend : {0, 1, 3, 4}) {
    for (Micros reserved : {0, 1}) {
      for (bool paused : {false, true}) grid.push_back(Hop{4, spend, reserved, paused});
    }
  }
  return grid;
}

// For chains of 4 and 5 orgs: one representative of each way a hop can answer.
std::vector<Hop> small_hop_grid() {
  return {
      Hop{std::nullopt, 0, 0, false},  // no limit
      Hop{4, 0, 0, false},             // plenty of headroom
      Hop{4, 2, 1, false},             // headroom 1 once in-flight spend counts
      Hop{4, 4, 0, false},             // spend reached the limit: paused
      Hop{4, 1, 0, true},              // refused earlier this cycle: paused
      Hop{0, 0, 0, false},             // a zero limit admits nothing
  };
}

OrgState limited_org(Micros limit, Micros spend) {
  OrgState org;
  org.id = OrgId{7};
  org.cycle = this_cycle;
  org.monthly_limit_micros = limit;
  org.cycle_spend_micros = spend;
  org.balance_micros = 1'000'000;
  return org;
}

}  // namespace

// --- the decision over whole chains ---------------------------------------------------------------

TEST(ChargeExhaustive, ChainsOfOneToThreeOrgsAdmitExactlyWhatTheRuleAdmits) {
  Exhaustive ex;
  enumerate(full_hop_grid(), 1, 3, ex);
  EXPECT_EQ(ex.failures, 0u) << "of " << ex.cases << " cases";
  // The grid must exercise both outcomes heavily, or the test proves little.
  EXPECT_GT(ex.cases, 400'000u);
  EXPECT_GT(ex.accepted, 10'000u);
  EXPECT_LT(ex.accepted, ex.cases / 2);
}

TEST(ChargeExhaustive, ChainsOfFourAndFiveOrgsAdmitExactlyWhatTheRuleAdmits) {
  Exhaustive ex;
  enumerate(small_hop_grid(), 4, 5, ex);
  EXPECT_EQ(ex.failures, 0u) << "of " << ex.cases << " cases";
  EXPECT_GT(ex.cases, 250'000u);
  EXPECT_GT(ex.accepted, 1'000u);
}

// Events admitted one after another through the same orgs: each admitted event reserves its cost at
// every hop (and its debit at the payer) until the batch is recorded, so the events admitted together
// can never share headroom. Every refused event would indeed have passed a limit or the balance.
TEST(ChargeExhaustive, ReservationsKeepSequentiallyAdmittedEventsWithinLimitsAndBalance) {
  const std::vector<Hop> grid = {Hop{std::nullopt, 0, 0, false}, Hop{5, 0, 0, false}, Hop{5, 2, 0, false},
                                 Hop{3, 0, 0, false}};
  std::size_t batches = 0;
  std::size_t refusals = 0;
  for (std::size_t len = 1; len <= 3; ++len) {
    std::vector<std::size_t> pick(len, 0);
    while (true) {
      for (Micros balance = 0; balance <= 7; ++balance) {
        for (int seq_code = 0; seq_code < 27; ++seq_code) {
          const std::vector<Micros> costs = {1 + seq_code % 3, 1 + seq_code / 3 % 3, 1 + seq_code / 9};
          ChainCase c;
          for (std::size_t k : pick) c.hops.push_back(grid[k]);
          c.balance = balance;
          std::vector<OrgState> orgs = make_chain(c);
          std::vector<Micros> admitted;
          for (Micros cost : costs) {
            c.cost = cost;
            const Decision got = decide(orgs, c);
            ASSERT_EQ(got, contract_rule(c)) << describe(c);
            if (got.refused_at) {
              ++refusals;
              continue;
            }
            admitted.push_back(cost);
            for (Hop& h : c.hops) h.reserved += cost;
            c.debit_reserved += cost;
          }
          if (admitted.empty()) continue;
          ++batches;
          const ChargeBatch batch = batch_for(orgs, admitted);
          ASSERT_EQ(batch.total_micros(), c.debit_reserved);
          apply_to_chain(orgs, batch);
          for (std::size_t i = 0; i < orgs.size(); ++i) {
            const Hop& before = grid[pick[i]];
            EXPECT_EQ(orgs[i].cycle_spend_micros, before.spend + c.debit_reserved) << describe(c);
            if (before.limit) {
              EXPECT_LE(orgs[i].cycle_spend_micros, *before.limit) << describe(c);
            }
          }
          EXPECT_EQ(orgs.back().balance_micros, balance - c.debit_reserved) << describe(c);
          EXPECT_GE(orgs.back().balance_micros, 0) << describe(c);
        }
      }
      std::size_t k = 0;
      while (k < len && ++pick[k] == grid.size()) pick[k++] = 0;
      if (k == len) break;
    }
  }
  EXPECT_GT(batches, 100u);
  EXPECT_GT(refusals, 100u);
}

// --- one hop, named cases ---------------------------------------------------------------------------

TEST(ChargeLimit, CostThatLandsExactlyOnTheLimitIsAdmitted) {
  EXPECT_EQ(admit_limit(limited_org(10, 7), InFlight{}, 3), Refusal::none);
}

TEST(ChargeLimit, CostOneMicroPastTheLimitIsRefusedAsLimitReached) {
  EXPECT_EQ(admit_limit(limited_org(10, 7), InFlight{}, 4), Refusal::limit_reached);
}

TEST(ChargeLimit, SpendReservedInFlightCountsAgainstTheLimit) {
  EXPECT_EQ(admit_limit(limited_org(10, 5), InFlight{2, 0}, 3), Refusal::none);
  EXPECT_EQ(admit_limit(limited_org(10, 5), InFlight{3, 0}, 3), Refusal::limit_reached);
}

TEST(ChargeLimit, DebitsReservedInFlightDoNotCountAgainstTheLimit) {
  EXPECT_EQ(admit_limit(limited_org(10, 5), InFlight{0, 1'000}, 5), Refusal::none);
}

TEST(ChargeLimit, WithoutALimitAnySpendIsAdmitted) {
  OrgState org = limited_org(0, 0);
  org.monthly_limit_micros.reset();
  org.cycle_spend_micros = 1'000'000'000'000;
  EXPECT_EQ(admit_limit(org, InFlight{1'000'000'000'000, 0}, 1'000'000'000'000), Refusal::none);
}

TEST(ChargeLimit, AZeroLimitAdmitsNothing) {
  EXPECT_EQ(admit_limit(limited_org(0, 0), InFlight{}, 1), Refusal::paused);
  EXPECT_TRUE(limited_org(0, 0).paused());
}

TEST(ChargeLimit, SumsPastInt64AreRefusedAsOverflowNeverWrapped) {
  constexpr Micros max = std::numeric_limits<Micros>::max();
  EXPECT_EQ(admit_limit(limited_org(max, max - 1), InFlight{}, 2), Refusal::overflow);
  EXPECT_EQ(admit_limit(limited_org(max, 1), InFlight{max - 1, 0}, 1), Refusal::overflow);
}

TEST(ChargeLimit, NegativeCostIsAProgrammerErrorThatStopsTheProcess) {
  EXPECT_DEATH(admit_limit(limited_org(10, 0), InFlight{}, -1), "invariant failed");
}

TEST(ChargeBalance, BalanceExactlyCoveringTheCostIsEnough) {
  OrgState payer = limited_org(100, 0);
  payer.balance_micros = 50;
  EXPECT_EQ(admit_balance(payer, InFlight{}, 50), Refusal::none);
  EXPECT_EQ(admit_balance(payer, InFlight{}, 51), Refusal::insufficient_credits);
}

TEST(ChargeBalance, DebitsReservedInFlightAreNotAvailable) {
  OrgState payer = limited_org(100, 0);
  payer.balance_micros = 50;
  EXPECT_EQ(admit_balance(payer, InFlight{0, 20}, 30), Refusal::none);
  EXPECT_EQ(admit_balance(payer, InFlight{0, 21}, 30), Refusal::insufficient_credits);
  EXPECT_EQ(available_balance(payer, InFlight{0, 21}), 29);
}

TEST(ChargeBalance, SpendReservedInFlightIsNotADebit) {
  OrgState payer = limited_org(100, 0);
  payer.balance_micros = 50;
  EXPECT_EQ(admit_balance(payer, InFlight{40, 0}, 50), Refusal::none);
}

TEST(ChargeBalance, ZeroBalanceCoversOnlyAFreeEvent) {
  OrgState payer = limited_org(100, 0);
  payer.balance_micros = 0;
  EXPECT_EQ(admit_balance(payer, InFlight{}, 0), Refusal::none);
  EXPECT_EQ(admit_balance(payer, InFlight{}, 1), Refusal::insufficient_credits);
}

TEST(ChargeBalance, NegativeCostIsAProgrammerErrorThatStopsTheProcess) {
  EXPECT_DEATH(admit_balance(limited_org(10, 0), InFlight{}, -1), "invariant failed");
}

// --- applying the charge record -----------------------------------------------------------------------

TEST(ChargeApply, BatchOfSeveralEventsChargesTheirSumOnceAtEveryHop) {
  ChainCase c{{Hop{}, Hop{100, 10, 0, false}, Hop{}}, 1'000, 0, 0};
  std::vector<OrgState> orgs = make_chain(c);
  apply_to_chain(orgs, batch_for(orgs, {5, 7, 11}));
  EXPECT_EQ(orgs[0].cycle_spend_micros, 23);
  EXPECT_EQ(orgs[1].cycle_spend_micros, 33);
  EXPECT_EQ(orgs[2].cycle_spend_micros, 23);
  EXPECT_EQ(orgs[2].balance_micros, 977);
  EXPECT_EQ(orgs[0].balance_micros, other_orgs_balance);
  EXPECT_EQ(orgs[1].balance_micros, other_orgs_balance);
}

TEST(ChargeApply, OrgsOffTheChainAreUntouched) {
  ChainCase c{{Hop{}, Hop{}}, 1'000, 0, 0};
  std::vector<OrgState> orgs = make_chain(c);
  OrgState bystander = org_for_hop(ChainCase{{Hop{}}, 500, 0, 0}, 0);
  bystander.id = OrgId{99};
  const OrgState before = bystander;
  canopy::domain::apply(bystander, Record{batch_for(orgs, {100})});
  EXPECT_EQ(bystander, before);
}

TEST(ChargeApply, ChargeTheRecordCannotCoverStopsTheProcessRatherThanGoNegative) {
  ChainCase c{{Hop{}}, 10, 0, 0};
  std::vector<OrgState> orgs = make_chain(c);
  const ChargeBatch batch = batch_for(orgs, {11});
  EXPECT_DEATH(canopy::domain::apply(orgs[0], Record{batch}), "invariant failed");
}

TEST(ChargeApply, SpendReachingTheLimitExactlyLeavesTheOrgPaused) {
  ChainCase c{{Hop{10, 6, 0, false}}, 1'000, 0, 0};
  std::vector<OrgState> orgs = make_chain(c);
  EXPECT_FALSE(orgs[0].paused());
  apply_to_chain(orgs, batch_for(orgs, {4}));
  EXPECT_EQ(orgs[0].cycle_spend_micros, 10);
  EXPECT_TRUE(orgs[0].paused());
  EXPECT_FALSE(orgs[0].paused_flag);  // paused by the numbers, not by a refusal
}

TEST(ChargeApply, RefusalNamesAChargeThePayerCannotCoverButNotTheOtherHops) {
  ChainCase c{{Hop{}, Hop{}}, 10, 0, 0};
  const std::vector<OrgState> orgs = make_chain(c);
  const Record record{batch_for(orgs, {11})};
  EXPECT_FALSE(apply_refusal(orgs[0], record).has_value());
  EXPECT_TRUE(apply_refusal(orgs[1], record).has_value());
  EXPECT_FALSE(apply_refusal(orgs[1], Record{batch_for(orgs, {10})}).has_value());
}

TEST(ChargeApply, RefusalNamesAChargeWithANegativeCost) {
  ChainCase c{{Hop{}}, 10, 0, 0};
  const std::vector<OrgState> orgs = make_chain(c);
  EXPECT_TRUE(apply_refusal(orgs[0], Record{batch_for(orgs, {5, -1})}).has_value());
}

TEST(ChargeApply, RefusalNamesATransferTheSenderCannotCover) {
  ChainCase c{{Hop{}}, 10, 0, 0};
  const OrgState from = make_chain(c)[0];
  OrgState to = from;
  to.id = OrgId{50};
  const Record too_much{TransferRecorded{from.id, to.id, PaymentId{1}, PaymentId{2}, 11, 0, "k"}};
  EXPECT_TRUE(apply_refusal(from, too_much).has_value());
  EXPECT_FALSE(apply_refusal(to, too_much).has_value());
  EXPECT_FALSE(apply_refusal(from, Record{TransferRecorded{from.id, to.id, PaymentId{1}, PaymentId{2}, 10, 0, "k"}}));
  EXPECT_TRUE(apply_refusal(from, Record{TransferRecorded{from.id, to.id, PaymentId{1}, PaymentId{2}, -1, 0, "k"}}));
}

TEST(ChargeApply, RefusalNamesACreditThatWouldOverflowTheBalance) {
  OrgState org = limited_org(10, 0);
  org.balance_micros = std::numeric_limits<Micros>::max();
  const Record grant{PaymentRecorded{org.id, PaymentId{1}, PaymentKind::grant, PaymentStatus::succeeded, 1, 0, "", ""}};
  EXPECT_TRUE(apply_refusal(org, grant).has_value());
  const Record failed{PaymentRecorded{org.id, PaymentId{1}, PaymentKind::top_up, PaymentStatus::failed, 1, 0, "k", ""}};
  EXPECT_FALSE(apply_refusal(org, failed).has_value());
}

// --- paused --------------------------------------------------------------------------------------------

TEST(ChargePaused, OneMicroBelowTheLimitIsNotPaused) {
  EXPECT_FALSE(limited_org(10, 9).paused());
  EXPECT_EQ(admit_limit(limited_org(10, 9), InFlight{}, 1), Refusal::none);
}

TEST(ChargePaused, SpendAtTheLimitIsPausedAndRefusesEvenAFreeEvent) {
  const OrgState org = limited_org(10, 10);
  EXPECT_TRUE(org.paused());
  EXPECT_EQ(admit_limit(org, InFlight{}, 0), Refusal::paused);
}

TEST(ChargePaused, PausedFlagRefusesAnEventThatWouldFit) {
  OrgState org = limited_org(10, 1);
  org.paused_flag = true;
  EXPECT_TRUE(org.paused());
  EXPECT_EQ(admit_limit(org, InFlight{}, 1), Refusal::paused);
}

TEST(ChargePaused, PauseSetInTheCurrentCycleSetsTheFlag) {
  OrgState org = limited_org(10, 1);
  canopy::domain::apply(org, Record{PauseSet{org.id, this_cycle}});
  EXPECT_TRUE(org.paused_flag);
  EXPECT_TRUE(org.paused());
}

TEST(ChargePaused, PauseSetFromAnEndedCycleIsIgnored) {
  OrgState org = limited_org(10, 1);
  canopy::domain::apply(org, Record{PauseSet{org.id, this_cycle - 1}});
  EXPECT_FALSE(org.paused_flag);
  EXPECT_FALSE(org.paused());
}

TEST(ChargePaused, RaisingTheLimitLiftsThePause) {
  OrgState org = limited_org(10, 3);
  org.paused_flag = true;
  canopy::domain::apply(org, Record{LimitSet{org.id, 11}});
  EXPECT_FALSE(org.paused());
  EXPECT_EQ(admit_limit(org, InFlight{}, 8), Refusal::none);
}

TEST(ChargePaused, RemovingTheLimitLiftsThePause) {
  OrgState org = limited_org(10, 10);
  org.paused_flag = true;
  canopy::domain::apply(org, Record{LimitSet{org.id, std::nullopt}});
  EXPECT_FALSE(org.paused());
  EXPECT_EQ(admit_limit(org, InFlight{}, 1'000), Refusal::none);
}

TEST(ChargePaused, LoweringTheLimitDoesNotLiftThePause) {
  OrgState org = limited_org(10, 3);
  org.paused_flag = true;
  canopy::domain::apply(org, Record{LimitSet{org.id, 9}});
  EXPECT_TRUE(org.paused());
  EXPECT_EQ(admit_limit(org, InFlight{}, 1), Refusal::paused);
}

TEST(ChargePaused, SettingTheSameLimitAgainDoesNotLiftThePause) {
  OrgState org = limited_org(10, 3);
  org.paused_flag = true;
  canopy::domain::apply(org, Record{LimitSet{org.id, 10}});
  EXPECT_TRUE(org.paused());
}

TEST(ChargePaused, LoweringTheLimitToTheSpendPausesTheOrg) {
  OrgState org = limited_org(10, 6);
  canopy::domain::apply(org, Record{LimitSet{org.id, 6}});
  EXPECT_TRUE(org.paused());
  EXPECT_EQ(admit_limit(org, InFlight{}, 1), Refusal::paused);
}

TEST(ChargePaused, RaisingTheLimitToStillBelowTheSpendLeavesTheOrgPaused) {
  OrgState org = limited_org(5, 5);
  canopy::domain::apply(org, Record{LimitSet{org.id, 4}});  // lowered below what was already spent
  canopy::domain::apply(org, Record{LimitSet{org.id, 5}});  // raised, but only back to the spend
  EXPECT_TRUE(org.paused());
}

// --- cycles -------------------------------------------------------------------------------------------

TEST(ChargeCycle, ViewWithinTheSameCycleIsTheStoredState) {
  OrgState org = limited_org(10, 10);
  org.paused_flag = true;
  org.free_credits_recipient = true;
  EXPECT_EQ(view_at(org, cycle_end(this_cycle) - 1, free_allowance), org);
}

TEST(ChargeCycle, ViewAfterTheCycleEndedShowsTheNewCycleSpendZeroAndResumed) {
  OrgState org = limited_org(10, 10);
  org.paused_flag = true;
  const OrgState view = view_at(org, cycle_end(this_cycle), free_allowance);
  EXPECT_EQ(view.cycle, this_cycle + 1);
  EXPECT_EQ(view.cycle_spend_micros, 0);
  EXPECT_FALSE(view.paused());
  EXPECT_EQ(admit_limit(view, InFlight{}, 10), Refusal::none);
}

TEST(ChargeCycle, ViewAfterTheCycleEndedAddsTheAllowanceOnlyForTheRecipient) {
  OrgState org = limited_org(10, 0);
  org.balance_micros = 100;
  EXPECT_EQ(view_at(org, cycle_end(this_cycle), free_allowance).balance_micros, 100);
  org.free_credits_recipient = true;
  EXPECT_EQ(view_at(org, cycle_end(this_cycle), free_allowance).balance_micros, 100 + free_allowance);
}

TEST(ChargeCycle, ViewAfterSeveralIdleCyclesGrantsOneAllowancePerCycleCrossed) {
  OrgState org = limited_org(10, 4);
  org.balance_micros = 100;
  org.free_credits_recipient = true;
  const OrgState view = view_at(org, cycle_start(this_cycle + 3) + 60, free_allowance);
  EXPECT_EQ(view.cycle, this_cycle + 3);
  EXPECT_EQ(view.cycle_spend_micros, 0);
  EXPECT_EQ(view.balance_micros, 100 + 3 * free_allowance);
}

TEST(ChargeCycle, RolloverRecordForANonRecipientCarriesNoCredits) {
  const OrgState org = limited_org(10, 4);
  const CycleRolled roll = rollover_to(org, this_cycle + 2, free_allowance);
  EXPECT_EQ(roll.org, org.id);
  EXPECT_EQ(roll.cycle, this_cycle + 2);
  EXPECT_EQ(roll.free_credits_micros, 0);
}

TEST(ChargeCycle, RolloverRecordIntoTheSameOrAnEarlierCycleIsAProgrammerError) {
  const OrgState org = limited_org(10, 4);
  EXPECT_DEATH(rollover_to(org, this_cycle, free_allowance), "invariant failed");
  EXPECT_DEATH(rollover_to(org, this_cycle - 1, free_allowance), "invariant failed");
}

TEST(ChargeCycle, ViewAtAnEarlierTimeThanTheStoredCycleIsTheStoredState) {
  OrgState org = limited_org(10, 4);
  org.free_credits_recipient = true;
  EXPECT_EQ(view_at(org, cycle_start(this_cycle) - 1, free_allowance), org);
}

TEST(ChargeCycle, ViewMatchesWhatTheJournaledRolloverWillDo) {
  OrgState org = limited_org(10, 10);
  org.paused_flag = true;
  org.free_credits_recipient = true;
  const Timestamp now = cycle_start(this_cycle + 1) + 86'400;
  OrgState rolled = org;
  canopy::domain::apply(rolled, Record{CycleRolled{org.id, cycle_of(now), free_allowance, PaymentId{5}}});
  EXPECT_EQ(view_at(org, now, free_allowance), rolled);
}

TEST(ChargeCycle, CycleRolledAddsFreeCreditsAndResetsSpendAndPause) {
  OrgState org = limited_org(10, 10);
  org.paused_flag = true;
  org.balance_micros = 7;
  canopy::domain::apply(org, Record{CycleRolled{org.id, this_cycle + 1, free_allowance, PaymentId{5}}});
  EXPECT_EQ(org.cycle, this_cycle + 1);
  EXPECT_EQ(org.cycle_spend_micros, 0);
  EXPECT_FALSE(org.paused_flag);
  EXPECT_EQ(org.balance_micros, 7 + free_allowance);
}

TEST(ChargeCycle, CycleRolledTwiceToTheSameCycleGrantsOnce) {
  OrgState org = limited_org(10, 3);
  const Record roll{CycleRolled{org.id, this_cycle + 1, free_allowance, PaymentId{5}}};
  canopy::domain::apply(org, roll);
  canopy::domain::apply(org, Record{ChargeBatch{{ChainHop{org.id, this_cycle + 1}}, 0, {ChargeEvent{"e", "inbox.x", 1, 2, 0}}}});
  const OrgState once = org;
  canopy::domain::apply(org, roll);
  EXPECT_EQ(org, once);
}

TEST(ChargeCycle, CycleRolledToAnOlderCycleChangesNothing) {
  OrgState org = limited_org(10, 3);
  const OrgState before = org;
  canopy::domain::apply(org, Record{CycleRolled{org.id, this_cycle - 1, free_allowance, PaymentId{5}}});
  EXPECT_EQ(org, before);
}

// A hop admitted the event in a cycle that has since ended at that org: the spend belonged to the
// ended cycle, so the new cycle's spend stays as it is; the payer is still debited.
TEST(ChargeCycle, HopAdmittedInAnEndedCycleAddsNoSpendToTheNewCycle) {
  ChainCase c{{Hop{10, 2, 0, false}, Hop{10, 2, 0, false}}, 100, 0, 0};
  std::vector<OrgState> orgs = make_chain(c);
  const ChargeBatch batch = batch_for(orgs, {3});  // both hops admitted in this_cycle
  canopy::domain::apply(orgs[0], Record{CycleRolled{orgs[0].id, this_cycle + 1, 0, PaymentId::none}});
  apply_to_chain(orgs, batch);
  EXPECT_EQ(orgs[0].cycle, this_cycle + 1);
  EXPECT_EQ(orgs[0].cycle_spend_micros, 0);
  EXPECT_EQ(orgs[1].cycle_spend_micros, 5);
  EXPECT_EQ(orgs[1].balance_micros, 97);
}

TEST(ChargeCycle, PayerAdmittedInAnEndedCycleIsStillDebited) {
  ChainCase c{{Hop{}, Hop{10, 4, 0, false}}, 100, 0, 0};
  std::vector<OrgState> orgs = make_chain(c);
  const ChargeBatch batch = batch_for(orgs, {3});
  canopy::domain::apply(orgs[1], Record{CycleRolled{orgs[1].id, this_cycle + 1, 50, PaymentId{5}}});
  apply_to_chain(orgs, batch);
  EXPECT_EQ(orgs[1].cycle_spend_micros, 0);
  EXPECT_EQ(orgs[1].balance_micros, 100 + 50 - 3);
}

// --- percent used -------------------------------------------------------------------------------------

TEST(ChargePercent, NoLimitHasNoPercent) {
  OrgState org = limited_org(10, 0);
  org.monthly_limit_micros.reset();
  EXPECT_FALSE(percent_used(org).has_value());
}

TEST(ChargePercent, OneThirdReads33Point3AndTwoThirds66Point7) {
  EXPECT_EQ(percent_used(limited_org(3, 1)), 33.3);
  EXPECT_EQ(percent_used(limited_org(3, 2)), 66.7);
  EXPECT_EQ(percent_used(limited_org(3'000'000, 1'000'000)), 33.3);
}

TEST(ChargePercent, ExactHalfTenthRoundsUp) {
  EXPECT_EQ(percent_used(limited_org(2'000, 1)), 0.1);        // 0.05 %
  EXPECT_EQ(percent_used(limited_org(2'001, 1)), 0.0);        // 0.04998 %
  EXPECT_EQ(percent_used(limited_org(10'000, 9'995)), 100.0); // 99.95 %
  EXPECT_EQ(percent_used(limited_org(10'000, 9'994)), 99.9);  // 99.94 %
}

TEST(ChargePercent, NothingSpentIsZeroAndAllSpentIsHundred) {
  EXPECT_EQ(percent_used(limited_org(5'000'000, 0)), 0.0);
  EXPECT_EQ(percent_used(limited_org(5'000'000, 5'000'000)), 100.0);
}

TEST(ChargePercent, SpendAboveALoweredLimitReadsAboveHundred) {
  EXPECT_EQ(percent_used(limited_org(2, 3)), 150.0);
}

TEST(ChargePercent, ZeroLimitReadsHundredOnceAnythingIsSpent) {
  EXPECT_EQ(percent_used(limited_org(0, 0)), 0.0);
  EXPECT_EQ(percent_used(limited_org(0, 1)), 100.0);
}

TEST(ChargePercent, HugeAmountsDoNotOverflow) {
  constexpr Micros max = std::numeric_limits<Micros>::max();
  EXPECT_EQ(percent_used(limited_org(max, max)), 100.0);
  EXPECT_EQ(percent_used(limited_org(max - 1, (max - 1) / 2)), 50.0);
}

// Every spend up to 150% of every limit up to 400, against long division with the remainder compared
// to half the divisor.
TEST(ChargePercent, EverySmallRatioRoundsHalfUpToOneDecimal) {
  std::size_t failures = 0;
  for (Micros limit = 1; limit <= 400; ++limit) {
    for (Micros spend = 0; spend <= limit + limit / 2; ++spend) {
      Micros tenths = spend * 1000 / limit;
      if (2 * (spend * 1000 % limit) >= limit) ++tenths;
      const auto got = percent_used(limited_org(limit, spend));
      if (!got || *got != static_cast<double>(tenths) / 10.0) {
        if (++failures <= 10) ADD_FAILURE() << spend << "/" << limit << ": got " << (got ? *got : -1.0);
      }
    }
  }
  EXPECT_EQ(failures, 0u);
}
