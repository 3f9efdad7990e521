// The journal the persistence tests write: a scenario of commits over four orgs in two trees, the
// reference fold of it, and a writer that commits it the way the persistence writer does. Shared by
// the recovery and journal-trim tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "domain/apply.hpp"
#include "domain/time.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"
#include "persistence/materializer.hpp"
#include "persistence/store.hpp"

namespace canopy::domain {
// Readable failures: an org prints as its money and shape, not as raw bytes.
inline void PrintTo(const OrgState& org, std::ostream* out) {
  *out << to_string(org.id) << "{balance " << org.balance_micros << ", cycle " << org.cycle << ", spend "
       << org.cycle_spend_micros << ", paused_flag " << org.paused_flag << ", limit "
       << (org.monthly_limit_micros ? std::to_string(*org.monthly_limit_micros) : "none") << ", consolidated "
       << org.consolidated << ", members " << org.members.size() << "}";
}
}  // namespace canopy::domain

namespace canopy::test {

using namespace canopy::domain;
using namespace canopy::persistence;

inline constexpr Cycle c0 = 682;  // November 2026
inline constexpr Micros allowance = 5'000'000;

inline const OrgId root_r{101};
inline const OrgId sub_a{102};  // child of R
inline const OrgId sub_b{103};  // child of A
inline const OrgId root_s{104};
inline const UserId ann{201};
inline const UserId bob{202};

inline Timestamp at(Cycle c, int hour) { return cycle_start(c) + hour * 3600; }

inline ChargeBatch charge(std::vector<ChainHop> chain, std::vector<Micros> costs, Timestamp when) {
  ChargeBatch batch;
  batch.chain = std::move(chain);
  batch.at = when;
  std::vector<ChargeEvent> events;
  for (std::size_t i = 0; i < costs.size(); ++i) {
    events.push_back(ChargeEvent{"evt_" + std::to_string(when) + "_" + std::to_string(i), "assistants.reply", 1,
                                 costs[i], when});
  }
  batch.events = std::move(events);
  return batch;
}

inline PaymentRecorded payment(OrgId org, std::uint64_t id, PaymentKind kind, PaymentStatus status, Micros amount,
                        std::string key, Timestamp when) {
  return PaymentRecorded{org, PaymentId{id}, kind, status, amount, when, std::move(key), "test"};
}

// The scenario: two users; a business root R with a sub-org A and its child B; a second root S.
// Grants, limits, charges up three levels, a pause, B turning independent and receiving a transfer, a
// cycle rollover with free credits, a failed top-up, a limit removal, a top-up with an idempotency key.
// Each inner vector is one commit of the writer.
inline std::vector<std::vector<Record>> scenario() {
  const auto hop = [](OrgId o, Cycle c) { return ChainHop{o, c}; };
  return {
      {UserCreated{ann, "ann@example.com", "Ann", hash_token("cu_ann"), at(c0, 1)},
       UserCreated{bob, "bob@example.com", "Bob", hash_token("cu_bob"), at(c0, 1)}},
      {OrgCreated{root_r, OrgId::none, "Agency", Plan::business, ann, 0, at(c0, 2), c0, true, allowance,
                  PaymentId{301}},
       OrgCreated{sub_a, root_r, "Client A", std::nullopt, UserId::none, 1, at(c0, 2), c0, false, 0, PaymentId::none},
       OrgCreated{sub_b, sub_a, "Client B", std::nullopt, UserId::none, 2, at(c0, 2), c0, false, 0, PaymentId::none},
       OrgCreated{root_s, OrgId::none, "Solo", Plan::pay_as_you_go, bob, 0, at(c0, 2), c0, true, allowance,
                  PaymentId{302}}},
      {payment(root_r, 303, PaymentKind::grant, PaymentStatus::succeeded, 10'000'000, "", at(c0, 3))},
      {LimitSet{sub_a, 3'000'000}, charge({hop(sub_b, c0), hop(sub_a, c0), hop(root_r, c0)}, {1'000'000, 500'000},
                                          at(c0, 4))},
      {MemberSet{sub_a, bob, Role::developer}, charge({hop(sub_a, c0), hop(root_r, c0)}, {250'000}, at(c0, 5)),
       PauseSet{sub_a, c0}},
      {ConsolidatedSet{sub_b, false},
       TransferRecorded{root_r, sub_b, PaymentId{304}, PaymentId{305}, 2'000'000, at(c0, 6), "move-1"}},
      {charge({hop(sub_b, c0)}, {100'000}, at(c0, 7)), OrgRenamed{sub_b, "Client B (independent)"}},
      {CycleRolled{root_r, c0 + 1, allowance, PaymentId{306}}, CycleRolled{sub_a, c0 + 1, 0, PaymentId::none},
       charge({hop(sub_a, c0 + 1), hop(root_r, c0 + 1)}, {300'000}, at(c0 + 1, 1))},
      {payment(root_r, 307, PaymentKind::top_up, PaymentStatus::failed, 1'000'000, "top-1", at(c0 + 1, 2)),
       LimitSet{sub_a, std::nullopt}},
      {payment(root_s, 308, PaymentKind::top_up, PaymentStatus::succeeded, 7'000'000, "top-2", at(c0 + 1, 3)),
       charge({hop(root_s, c0)}, {1'000}, at(c0 + 1, 4)), SubscriptionSet{sub_b, Plan::pay_as_you_go}},
  };
}

inline std::size_t count_records(const std::vector<std::vector<Record>>& commits, std::size_t through) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < through; ++i) n += commits[i].size();
  return n;
}

// The reference: every org, folded in memory from the first `commits` commits of the scenario.
inline std::map<std::uint64_t, OrgState> reference_fold(const std::vector<std::vector<Record>>& commits,
                                                         std::size_t through) {
  std::map<std::uint64_t, OrgState> orgs;
  for (std::size_t i = 0; i < through; ++i) {
    for (const Record& record : commits[i]) {
      if (const auto* created = std::get_if<OrgCreated>(&record)) {
        orgs[raw(created->org)] = make_org(*created);
        continue;
      }
      for (OrgId id : orgs_touched(record)) canopy::domain::apply(orgs.at(raw(id)), record);
    }
  }
  return orgs;
}

// Writes commits the way the persistence writer does: journal rows and side rows in one commit, and
// the org tables only at a checkpoint.
class JournalWriter {
 public:
  JournalWriter(Store& store, std::uint64_t last_seq) : store_(store), materializer_(store) {
    materializer_.set_last_seq(last_seq);
  }

  Status commit(const std::vector<Record>& records, bool checkpoint) {
    WriteOps ops;
    add(records, ops);
    if (checkpoint) materializer_.flush(ops);
    return store_.commit(ops.span());
  }

  // As the serving writer does: with the commit, a slice of at most `max_orgs` orgs (every org here
  // is due: the tests never set the materializer's clock).
  Status commit_with_slice(const std::vector<Record>& records, std::size_t max_orgs) {
    WriteOps ops;
    add(records, ops);
    materializer_.flush_due(ops, std::chrono::steady_clock::now(), max_orgs);
    return store_.commit(ops.span());
  }

  // The same with the slice's cutoff given: orgs dirty and event ids pending since then are due.
  Status commit_due(const std::vector<Record>& records, std::chrono::steady_clock::time_point cutoff) {
    WriteOps ops;
    add(records, ops);
    materializer_.flush_due(ops, cutoff, SIZE_MAX);
    return store_.commit(ops.span());
  }

  Materializer& materializer() { return materializer_; }

 private:
  void add(const std::vector<Record>& records, WriteOps& ops) {
    for (const Record& record : records) {
      const std::uint64_t seq = materializer_.last_seq() + 1;
      ops.push_back(WriteOp{Table::journal, u64_key(seq), encode(record), false});
      const auto problem = materializer_.add(seq, record, ops);
      EXPECT_FALSE(problem.has_value()) << "record " << seq << ": " << problem.value_or("");
    }
  }

  Store& store_;
  Materializer materializer_;
};

// Commits after which the scenario checkpoints (0-based commit index). The last checkpoint is well
// before the end, so recovery has a tail to replay.
inline bool checkpoints_after(std::size_t commit) { return commit == 1 || commit == 4; }

}  // namespace canopy::test
