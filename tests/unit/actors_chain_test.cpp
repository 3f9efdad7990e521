// Goal: the actor layer on its own (no HTTP): the charge chain decides exactly, concurrent events
// never share headroom, the writer folds concurrent records into few commits and answers only after
// them, and what the actors acknowledged is what a fresh Runtime recovers from the store.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <future>
#include <thread>

#include "actors/messages.hpp"
#include "actors/runtime.hpp"
#include "config/limits.hpp"
#include "domain/rules.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"
#include "persistence/recovery.hpp"
#include "tests/support/commit_gate.hpp"

namespace canopy::actors {
namespace {

using namespace canopy::domain;

// Forwards to LMDB and counts the journal part's commits and the records in them. The journal part's
// commits can be held back (until release_journal()), so records stay in flight as long as a test
// needs; the state part's can be held back (until release_state()) or dropped as if the process died
// before them.
class CountingStore final : public persistence::Store {
 public:
  explicit CountingStore(std::unique_ptr<persistence::Store> inner) : inner_(std::move(inner)) {}
  persistence::Status commit(std::span<const persistence::WriteOp> ops) override {
    const bool journal_part = std::any_of(ops.begin(), ops.end(), [](const persistence::WriteOp& op) {
      return persistence::part_of(op.table) == persistence::Part::journal;
    });
    if (journal_part) {
      journal_gate_.wait();
      commits.fetch_add(1);
    } else {
      state_gate_.wait();
      if (drop_state) return {};
    }
    for (const auto& op : ops) journal_records.fetch_add(op.table == persistence::Table::journal ? 1 : 0);
    return inner_->commit(ops);
  }
  void hold_journal() { journal_gate_.hold(); }
  void pass_journal(int n) { journal_gate_.pass(n); }
  void release_journal() { journal_gate_.release(); }
  int journal_commits_arrived() { return journal_gate_.arrived(); }
  void hold_state() { state_gate_.hold(); }
  void release_state() { state_gate_.release(); }
  persistence::Status get(persistence::Table t, std::string_view k, std::string& v) const override {
    return inner_->get(t, k, v);
  }
  persistence::Status get_many(persistence::Table t, std::span<const std::string> keys,
                               std::vector<std::optional<std::string>>& values) const override {
    return inner_->get_many(t, keys, values);
  }
  persistence::Status read(const std::function<persistence::Status(const persistence::Snapshot&)>& r) const override {
    return inner_->read(r);
  }
  persistence::Status scan(persistence::Table t, std::string_view p, std::string_view f,
                           const std::function<bool(std::string_view, std::string_view)>& visit) const override {
    return inner_->scan(t, p, f, visit);
  }
  persistence::Status copy_compacted(const std::string& dir) const override { return inner_->copy_compacted(dir); }

  std::atomic<std::uint64_t> commits{0};
  std::atomic<std::uint64_t> journal_records{0};
  std::atomic<bool> drop_state{false};

 private:
  std::unique_ptr<persistence::Store> inner_;
  test::CommitGate journal_gate_;
  test::CommitGate state_gate_;
};

class ChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "canopy-actors-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    options_.data_dir = dir_;
    options_.operator_token = "op";
    options_.max_depth = limits::depth_default;
    options_.free_credits_micros = 0;  // balances in these tests are exactly what they grant
    options_.actor_threads = 2;
    options_.checkpoint_interval = std::chrono::milliseconds(50);
    start();
  }
  void TearDown() override {
    if (store_) {
      store_->release_journal();
      store_->release_state();
    }
    runtime_.reset();
    std::filesystem::remove_all(dir_);
  }

  void start() {
    persistence::Status status;
    auto lmdb = persistence::open_lmdb_store(dir_, {}, status);
    ASSERT_TRUE(lmdb) << status.message;
    auto counting = std::make_unique<CountingStore>(std::move(lmdb));
    store_ = counting.get();
    std::string error, token;
    runtime_ = Runtime::start(options_, std::move(counting), error, token);
    if (!runtime_) store_ = nullptr;  // it went with the runtime that failed to start
    ASSERT_TRUE(runtime_) << error;
  }
  Services& services() { return runtime_->services(); }

  template <class T, class Send>
  T ask(Send send) {
    auto promise = std::make_shared<std::promise<T>>();
    auto future = promise->get_future();
    send([promise](T value) { promise->set_value(std::move(value)); });
    EXPECT_EQ(future.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    return future.get();
  }

  UserId user() {
    auto r = ask<std::variant<Error, std::pair<UserId, std::string>>>([&](auto reply) {
      caf::anon_send(services().registry, user_atom::value,
                     CreateUser{email_for(++users_), "U", reply});
    });
    return std::get<std::pair<UserId, std::string>>(r).first;
  }
  static std::string email_for(int n) {
    std::string email = std::to_string(n);
    email.append("@example.com");
    return email;
  }
  OrgId root(UserId owner) {
    auto r = ask<CommandResult>([&](auto reply) {
      caf::anon_send(services().registry, root_atom::value, CreateRoot{"Root", Plan::business, owner, reply});
    });
    EXPECT_TRUE(r.ok) << r.error.message;
    return r.created->id;
  }
  CommandResult command(OrgId org, Command c) {
    return ask<CommandResult>([&](auto reply) {
      caf::anon_send(services().directory.actor_of(org), command_atom::value, CommandRequest{std::move(c), reply});
    });
  }
  OrgId sub(OrgId parent) { return command(parent, CreateSubOrg{"Sub", limits::depth_default}).created->id; }
  // As the gateway sends it: with the modules in effect in the lineage it read.
  ChargeRequest charge_request(OrgId org, Events events, Reply<std::vector<ChargeOutcome>> reply) {
    const auto modules = effective_modules(raw_lineage(services().directory.lineage(org)));
    return ChargeRequest{std::move(events), services().clock.now(), modules, std::move(reply)};
  }
  std::vector<ChargeOutcome> charge(OrgId org, std::vector<ChargeEvent> events) {
    auto shared = std::make_shared<const std::vector<ChargeEvent>>(std::move(events));
    return ask<std::vector<ChargeOutcome>>([&](auto reply) {
      caf::anon_send(services().directory.actor_of(org), charge_atom::value, charge_request(org, shared, reply));
    });
  }
  static ChargeEvent event(std::string id, Micros cost) {
    return ChargeEvent{std::move(id), "assistants.reply", 1, cost, 0};
  }
  OrgState org(OrgId id) { return *services().directory.org(id); }
  // Sent without waiting for the answer, which the future holds once it comes.
  std::future<CommandResult> command_async(OrgId org, Command c) {
    auto promise = std::make_shared<std::promise<CommandResult>>();
    auto future = promise->get_future();
    caf::anon_send(services().directory.actor_of(org), command_atom::value,
                   CommandRequest{std::move(c), [promise](CommandResult r) { promise->set_value(std::move(r)); }});
    return future;
  }
  std::future<std::vector<ChargeOutcome>> charge_async(OrgId org, std::vector<ChargeEvent> events) {
    auto promise = std::make_shared<std::promise<std::vector<ChargeOutcome>>>();
    auto future = promise->get_future();
    auto shared = std::make_shared<const std::vector<ChargeEvent>>(std::move(events));
    caf::anon_send(services().directory.actor_of(org), charge_atom::value,
                   charge_request(org, shared, [promise](std::vector<ChargeOutcome> out) { promise->set_value(std::move(out)); }));
    return future;
  }
  static bool wait_until(const std::function<bool()>& done) {
    for (int i = 0; i < 5'000 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return done();
  }
  // A sub-org of a root granted 10,000 micros, with a limit of 1,000 of which 600 are spent.
  std::pair<OrgId, OrgId> root_and_limited_sub() {
    const OrgId r = root(user());
    const OrgId a = sub(r);
    EXPECT_TRUE(command(r, Grant{10'000, "t"}).ok);
    EXPECT_TRUE(command(a, SetLimit{1'000}).ok);
    EXPECT_EQ(charge(a, {event("e1", 600)})[0].status, ChargeStatus::accepted);
    return {r, a};
  }

  std::string dir_;
  config::Options options_;
  std::unique_ptr<Runtime> runtime_;
  CountingStore* store_ = nullptr;
  int users_ = 0;
};

TEST_F(ChainTest, AChargeDebitsThePayerAndAddsSpendOnEveryOrgOfTheChain) {
  const OrgId r = root(user());
  const OrgId a = sub(r);
  const OrgId b = sub(a);
  ASSERT_TRUE(command(r, Grant{10'000, "t"}).ok);
  const auto out = charge(b, {event("e1", 700)});
  ASSERT_EQ(out[0].status, ChargeStatus::accepted);
  EXPECT_EQ(out[0].org, r);
  EXPECT_EQ(org(r).balance_micros, 9'300);
  EXPECT_EQ(org(r).cycle_spend_micros, 700);
  EXPECT_EQ(org(a).cycle_spend_micros, 700);
  EXPECT_EQ(org(b).cycle_spend_micros, 700);
  EXPECT_EQ(org(b).balance_micros, 0);
}

TEST_F(ChainTest, ARefusalHighInTheChainChargesNothingAnywhere) {
  const OrgId r = root(user());
  const OrgId a = sub(r);
  const OrgId b = sub(a);
  ASSERT_TRUE(command(r, Grant{10'000, "t"}).ok);
  ASSERT_TRUE(command(a, SetLimit{500}).ok);
  const auto out = charge(b, {event("e1", 501)});
  EXPECT_EQ(out[0].status, ChargeStatus::refused);
  EXPECT_EQ(out[0].refusal, Refusal::limit_reached);
  EXPECT_EQ(out[0].org, a);
  EXPECT_EQ(org(r).balance_micros, 10'000);
  EXPECT_EQ(org(b).cycle_spend_micros, 0);
  EXPECT_TRUE(org(a).paused());
}

TEST_F(ChainTest, TheOriginChecksTheModulesTheGatewayReadAndARequestNamingNoneChargesNothing) {
  const OrgId r = root(user());
  const OrgId a = sub(r);
  ASSERT_TRUE(command(r, Grant{10'000, "t"}).ok);
  auto events = std::make_shared<const std::vector<ChargeEvent>>(1, event("e1", 700));
  const auto out = ask<std::vector<ChargeOutcome>>([&](auto reply) {
    caf::anon_send(services().directory.actor_of(a), charge_atom::value,
                   ChargeRequest{events, services().clock.now(), ModuleSet{0}, reply});
  });
  ASSERT_EQ(out[0].status, ChargeStatus::refused);
  EXPECT_EQ(out[0].refusal, Refusal::module_disabled);
  EXPECT_EQ(out[0].org, a);
  EXPECT_EQ(org(r).balance_micros, 10'000);
  EXPECT_EQ(org(a).cycle_spend_micros, 0);
  // The same event with the modules the gateway reads is accepted: the id was not kept by the refusal.
  EXPECT_EQ(charge(a, {event("e1", 700)})[0].status, ChargeStatus::accepted);
}

TEST_F(ChainTest, ABatchIsDecidedEventByEventInOrder) {
  const OrgId r = root(user());
  const OrgId a = sub(r);
  ASSERT_TRUE(command(r, Grant{1'000, "t"}).ok);
  const auto out = charge(a, {event("e1", 400), event("e2", 400), event("e3", 400), event("e1", 400)});
  EXPECT_EQ(out[0].status, ChargeStatus::accepted);
  EXPECT_EQ(out[1].status, ChargeStatus::accepted);
  EXPECT_EQ(out[2].refusal, Refusal::insufficient_credits);
  EXPECT_TRUE(out[3].in_progress);  // the same id twice in one batch: the second waits for the first
  EXPECT_EQ(org(r).balance_micros, 200);
}

// Many concurrent events racing through one limited org: exactly as many are accepted as fit.
TEST_F(ChainTest, ConcurrentEventsNeverShareHeadroom) {
  const OrgId r = root(user());
  const OrgId a = sub(r);
  std::vector<OrgId> leaves;
  for (int i = 0; i < 8; ++i) leaves.push_back(sub(a));
  ASSERT_TRUE(command(r, Grant{1'000'000, "t"}).ok);
  ASSERT_TRUE(command(a, SetLimit{100 * 37}).ok);
  std::vector<std::future<std::vector<ChargeOutcome>>> futures;
  for (int i = 0; i < 400; ++i) {
    futures.push_back(std::async(std::launch::async, [this, &leaves, i] {
      return charge(leaves[static_cast<std::size_t>(i) % leaves.size()], {event(std::to_string(i), 100)});
    }));
  }
  int accepted = 0;
  for (auto& f : futures) accepted += f.get()[0].status == ChargeStatus::accepted ? 1 : 0;
  EXPECT_EQ(accepted, 37);
  EXPECT_EQ(org(a).cycle_spend_micros, 3'700);
  EXPECT_EQ(org(r).balance_micros, 1'000'000 - 3'700);
}

TEST_F(ChainTest, TheWriterFoldsConcurrentRecordsIntoFewCommits) {
  const OrgId r = root(user());
  std::vector<OrgId> orgs;
  for (int i = 0; i < 16; ++i) orgs.push_back(sub(r));
  ASSERT_TRUE(command(r, Grant{1'000'000'000, "t"}).ok);
  const auto commits_before = store_->commits.load();
  const auto records_before = store_->journal_records.load();
  std::vector<std::future<std::vector<ChargeOutcome>>> futures;
  // Fire 2,000 single-event charges at once without waiting, then wait for all.
  for (int i = 0; i < 2000; ++i) {
    auto p = std::make_shared<std::promise<std::vector<ChargeOutcome>>>();
    futures.push_back(p->get_future());
    auto events = std::make_shared<const std::vector<ChargeEvent>>(1, event(std::to_string(i), 1));
    const OrgId org = orgs[static_cast<std::size_t>(i) % orgs.size()];
    caf::anon_send(services().directory.actor_of(org), charge_atom::value,
                   charge_request(org, events, [p](std::vector<ChargeOutcome> o) { p->set_value(o); }));
  }
  for (auto& f : futures) ASSERT_EQ(f.get()[0].status, ChargeStatus::accepted);
  const auto records = store_->journal_records.load() - records_before;
  const auto commits = store_->commits.load() - commits_before;
  EXPECT_GE(records, 2000u);
  EXPECT_LT(commits * 4, records) << commits << " commits for " << records << " records";
}

TEST_F(ChainTest, WhatWasAcknowledgedIsWhatANewRuntimeRecovers) {
  const OrgId r = root(user());
  const OrgId a = sub(r);
  ASSERT_TRUE(command(r, Grant{5'000, "t"}).ok);
  ASSERT_EQ(charge(a, {event("e1", 1'234)})[0].status, ChargeStatus::accepted);
  const OrgState before_r = org(r), before_a = org(a);
  runtime_.reset();  // a clean stop writes a final checkpoint
  start();
  EXPECT_EQ(org(r), before_r);
  EXPECT_EQ(org(a), before_a);
  // The accepted id is remembered across the restart: a retry answers as before and charges nothing.
  const auto retry = charge(a, {event("e1", 1'234)});
  EXPECT_EQ(retry[0].status, ChargeStatus::accepted);
  EXPECT_EQ(org(r).balance_micros, 5'000 - 1'234);
}

// A limit change is journaled before the charges its org handles after it, so those charges are
// decided under the new limit, even while the change waits for its commit; and the org in memory is
// what the journal recovers. (Decided under the old limit, the charge below was refused and paused
// the org, ahead of the change in memory but behind it in the journal: the live org showed no pause
// and a restart brought one back. The randomized concurrency test found it.)
TEST_F(ChainTest, AChargeAfterALimitChangeIsDecidedUnderTheNewLimitWhileTheChangeIsInFlight) {
  const auto [r, a] = root_and_limited_sub();

  store_->hold_journal();  // the limit's record stays in flight
  auto removed = command_async(a, SetLimit{std::nullopt});
  auto charged = charge_async(a, {event("e2", 500)});
  // The org has handled the change (the new limit shows) or the charge (a pause shows).
  wait_until([&] { return !org(a).monthly_limit_micros || org(a).paused_flag; });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // and, most likely, the charge after it
  EXPECT_EQ(removed.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout)
      << "the change is answered only once its record is committed";
  store_->release_journal();

  ASSERT_EQ(removed.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  ASSERT_EQ(charged.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_TRUE(removed.get().ok);
  const auto out = charged.get();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, ChargeStatus::accepted) << "the limit was removed before the charge arrived";
  const OrgState before_r = org(r), before_a = org(a);
  EXPECT_FALSE(before_a.paused());
  EXPECT_EQ(before_a.cycle_spend_micros, 1'100);
  runtime_.reset();
  start();
  EXPECT_EQ(org(a).paused(), before_a.paused());
  EXPECT_EQ(org(a), before_a) << "the journal recovers the org as it was in memory";
  EXPECT_EQ(org(r), before_r);
}

// A command's answer shows the org as it is in memory, with what it applied ahead of the journal (a
// pause here): it waits until that is durable too, so a kill -9 after it cannot take back what it showed.
TEST_F(ChainTest, ACommandIsAnsweredOnlyOnceThePauseItShowsIsDurable) {
  const OrgId a = root_and_limited_sub().second;

  store_->hold_journal();
  const int arrived = store_->journal_commits_arrived();
  auto lowered = command_async(a, SetLimit{800});
  // The limit's record is in a commit held at the gate.
  ASSERT_TRUE(wait_until([&] { return store_->journal_commits_arrived() > arrived; }));
  auto charged = charge_async(a, {event("e2", 500)});
  ASSERT_TRUE(wait_until([&] { return org(a).paused_flag; })) << "refused at the new limit, the org pauses at once";
  store_->pass_journal(1);  // the limit's commit; the pause's comes next and is held
  ASSERT_TRUE(wait_until([&] { return store_->journal_commits_arrived() > arrived + 1; }));
  EXPECT_EQ(lowered.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout)
      << "the limit is durable, but the answer would show a pause that is not";
  EXPECT_EQ(charged.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  store_->release_journal();

  ASSERT_EQ(lowered.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  const auto result = lowered.get();
  ASSERT_TRUE(result.ok);
  EXPECT_TRUE(result.org->paused());
  ASSERT_EQ(charged.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  const auto out = charged.get();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].refusal, Refusal::limit_reached);
}

// The payer journals the accepted events of a batch (sharing the parsed ones when all are accepted):
// a refused event's id stays free, and a new runtime recovers exactly the accepted ones.
TEST_F(ChainTest, OnlyTheAcceptedEventsOfABatchAreRecordedAsCharged) {
  const OrgId r = root(user());
  const OrgId a = sub(r);
  ASSERT_TRUE(command(r, Grant{1'000, "t"}).ok);
  const auto out = charge(a, {event("e1", 400), event("e2", 700), event("e3", 500)});
  EXPECT_EQ(out[0].status, ChargeStatus::accepted);
  EXPECT_EQ(out[1].refusal, Refusal::insufficient_credits);
  EXPECT_EQ(out[2].status, ChargeStatus::accepted);
  runtime_.reset();
  start();
  EXPECT_EQ(org(r).balance_micros, 100);
  EXPECT_EQ(org(a).cycle_spend_micros, 900);
  const auto retry = charge(a, {event("e1", 400), event("e2", 50), event("e3", 500)});
  for (const auto& o : retry) EXPECT_EQ(o.status, ChargeStatus::accepted);
  EXPECT_EQ(org(r).balance_micros, 50) << "only e2, refused the first time, is charged now";
  EXPECT_EQ(org(a).cycle_spend_micros, 950);
}

// The writer indexes accepted ids with its checkpoints (here, not for ten minutes). Until then the
// origin actor answers a retry itself, with the first answer, and charges nothing; a refused id is
// not remembered at all.
TEST_F(ChainTest, ARetryOfAnIdNotYetIndexedGetsTheFirstAnswerFromItsOrigin) {
  runtime_.reset();
  options_.checkpoint_interval = std::chrono::minutes(10);
  start();
  const OrgId r = root(user());
  const OrgId a = sub(r);
  ASSERT_TRUE(command(r, Grant{5'000, "t"}).ok);
  const auto first = charge(a, {event("e1", 1'000), event("big", 9'000)});
  ASSERT_EQ(first[0].status, ChargeStatus::accepted);
  ASSERT_EQ(first[1].refusal, Refusal::insufficient_credits);
  std::string row;
  EXPECT_FALSE(store_->get(persistence::Table::event_ids, persistence::scoped_key(raw(a), "e1"), row).ok())
      << "not in the index yet";
  EXPECT_EQ(services().writer_stats.event_ids_unindexed(), 1u);
  caf::anon_send(services().directory.actor_of(a), prune_atom::value);  // nothing is indexed: nothing forgotten
  const auto retry = charge(a, {event("e1", 1'000), event("big", 500)});
  EXPECT_EQ(retry[0].status, ChargeStatus::accepted);
  EXPECT_EQ(retry[0].org, r) << "the payer of the first answer";
  EXPECT_EQ(retry[1].status, ChargeStatus::accepted) << "refused the first time: a new event now";
  EXPECT_EQ(org(r).balance_micros, 5'000 - 1'000 - 500) << "e1 charged once";
}

// Once the writer has indexed an id, its origin lets go of it, and retries are answered from the index.
TEST_F(ChainTest, AnAcceptedIdMovesFromItsOriginToTheIndexAndStillAnswersRetries) {
  const OrgId r = root(user());
  const OrgId a = sub(r);
  ASSERT_TRUE(command(r, Grant{5'000, "t"}).ok);
  ASSERT_EQ(charge(a, {event("e1", 1'000)})[0].status, ChargeStatus::accepted);
  EXPECT_EQ(services().unindexed_events_held.load(), 1u) << "the origin holds the event for its id";
  const std::uint64_t accepted_seq = services().writer_stats.committed_seq.load(std::memory_order_acquire);
  for (int i = 0; i < 1000 && services().writer_stats.ids_indexed_seq.load(std::memory_order_acquire) < accepted_seq; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string row;
  ASSERT_TRUE(store_->get(persistence::Table::event_ids, persistence::scoped_key(raw(a), "e1"), row).ok())
      << "indexed within a few checkpoint intervals";
  caf::anon_send(services().directory.actor_of(a), prune_atom::value);
  const auto retry = charge(a, {event("e1", 1'000)});  // after the prune (one sender's messages keep their order)
  EXPECT_EQ(services().unindexed_events_held.load(), 0u) << "let go once indexed";
  EXPECT_EQ(retry[0].status, ChargeStatus::accepted);
  EXPECT_EQ(retry[0].org, r);
  EXPECT_EQ(org(r).balance_micros, 4'000);
}

// An origin lets go of the ids it accepted as soon as the index has them, told by the index's advance
// (actors/index_watchers.hpp): charged again or not, and however few it holds.
TEST_F(ChainTest, AnOriginLetsGoOfItsIdsOnceIndexedWithoutAnotherCharge) {
  const OrgId r = root(user());
  const OrgId a = sub(r);
  const OrgId b = sub(r);
  ASSERT_TRUE(command(r, Grant{5'000, "t"}).ok);
  ASSERT_EQ(charge(a, {event("e1", 1'000)})[0].status, ChargeStatus::accepted);
  ASSERT_EQ(charge(b, {event("e1", 1'000), event("e2", 1'000)})[1].status, ChargeStatus::accepted);
  EXPECT_EQ(services().unindexed_events_held.load(), 3u);
  const std::uint64_t accepted_seq = services().writer_stats.committed_seq.load(std::memory_order_acquire);
  for (int i = 0; i < 1000 && services().writer_stats.ids_indexed_seq.load(std::memory_order_acquire) < accepted_seq; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(services().writer_stats.ids_indexed_seq.load(std::memory_order_acquire), accepted_seq);
  for (int i = 0; i < 200 && services().unindexed_events_held.load() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(services().unindexed_events_held.load(), 0u) << "both origins told, neither charged again";
  const auto retry = charge(b, {event("e2", 1'000)});
  EXPECT_EQ(retry[0].status, ChargeStatus::accepted) << "answered from the index now";
  EXPECT_EQ(retry[0].org, r);
  EXPECT_EQ(org(r).balance_micros, 2'000);
}

// The state part (snapshots, the id index, usage buckets) commits behind the acknowledgements: while
// its commits are held back, charges are still answered, but the index is not said to hold their ids
// and a usage barrier is not answered until the state part has what it covers.
TEST_F(ChainTest, ChargesAreAnsweredWhileTheStatePartIsBehindButTheIndexWaitsForIt) {
  const OrgId r = root(user());
  const OrgId a = sub(r);
  ASSERT_TRUE(command(r, Grant{5'000, "t"}).ok);
  store_->hold_state();
  ASSERT_EQ(charge(a, {event("e1", 1'000)})[0].status, ChargeStatus::accepted);
  const std::uint64_t accepted_seq = services().writer_stats.committed_seq.load(std::memory_order_acquire);
  auto usage_barrier = std::async(std::launch::async, [this, a] {
    caf::scoped_actor self{services().system};
    bool answered = false;
    self->request(services().writer, std::chrono::seconds(30), usage_atom::value, std::vector<OrgId>{a})
        .receive([&](std::uint64_t) { answered = true; }, [](caf::error&) {});
    return answered;
  });
  // Declared after the future, so destroyed before it: a failed assertion below releases the state
  // part before the future's destructor waits for the barrier.
  struct Release {
    CountingStore* store;
    ~Release() { store->release_state(); }
  } release{store_};
  EXPECT_EQ(usage_barrier.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
      << "a usage report must not read before the state part has the org's buckets";
  EXPECT_LT(services().writer_stats.ids_indexed_seq.load(std::memory_order_acquire), accepted_seq)
      << "the id is not in the state part yet, so the index must not be said to hold it";
  ASSERT_EQ(charge(a, {event("e1", 1'000)})[0].org, r) << "a retry is still answered, by the origin";
  store_->release_state();
  EXPECT_TRUE(usage_barrier.get());
  for (int i = 0; i < 1000 && services().writer_stats.ids_indexed_seq.load(std::memory_order_acquire) < accepted_seq; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(services().writer_stats.ids_indexed_seq.load(std::memory_order_acquire), accepted_seq);
  std::string row;
  EXPECT_TRUE(store_->get(persistence::Table::event_ids, persistence::scoped_key(raw(a), "e1"), row).ok())
      << "said to be indexed, so it must be in the state part";
  EXPECT_EQ(org(r).balance_micros, 4'000);
}

// Nothing acknowledged depends on the state part: a runtime whose state commits were all lost (the
// process died before each) recovers every org from the journal alone.
TEST_F(ChainTest, LosingEveryStatePartCommitLosesNothingAcknowledged) {
  store_->drop_state = true;
  const OrgId r = root(user());
  const OrgId a = sub(r);
  const OrgId b = sub(a);
  ASSERT_TRUE(command(r, Grant{50'000, "t"}).ok);
  ASSERT_TRUE(command(a, SetLimit{20'000}).ok);
  for (int i = 0; i < 20; ++i) {
    const std::string id = "e" + std::to_string(i);
    ASSERT_EQ(charge(i % 2 ? a : b, {event(id, 500)})[0].status, ChargeStatus::accepted);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // checkpoints come (and are lost)
  const OrgState before_r = org(r), before_a = org(a), before_b = org(b);
  runtime_.reset();  // the final checkpoint is lost too
  start();
  EXPECT_EQ(org(r), before_r);
  EXPECT_EQ(org(a), before_a);
  EXPECT_EQ(org(b), before_b);
  EXPECT_EQ(org(r).balance_micros, 50'000 - 20 * 500);
  EXPECT_EQ(charge(b, {event("e0", 500)})[0].status, ChargeStatus::accepted) << "a retry";
  EXPECT_EQ(org(r).balance_micros, 50'000 - 20 * 500) << "charged once";
  persistence::AuditResult audit;
  ASSERT_TRUE(persistence::audit(*store_, audit).ok());
  EXPECT_TRUE(audit.problems.empty()) << audit.problems.front();
}

}  // namespace
}  // namespace canopy::actors

namespace canopy::actors {
namespace {

std::size_t card_charges(Services& services) {
  return dynamic_cast<BuiltinPaymentProvider&>(services.payments).charges().size();
}

// A client must not be able to make the payer's card be charged for events that stay refused.
TEST_F(ChainTest, AutoRechargeNeverChargesTheCardForEventsItCannotCover) {
  const OrgId r = root(user());
  ASSERT_TRUE(command(r, SetPaymentMethod{PaymentMethod{"visa", "4242", 12, 2099}}).ok);
  ASSERT_TRUE(command(r, SetAutoRecharge{AutoRecharge{true, 0, 1'000}}).ok);
  std::vector<ChargeEvent> events;
  for (int i = 0; i < 50; ++i) events.push_back(event(std::to_string(i), 5'000));  // each needs more than one recharge
  for (const auto& o : charge(r, events)) EXPECT_EQ(o.refusal, Refusal::insufficient_credits);
  EXPECT_EQ(card_charges(services()), 0u);
  EXPECT_EQ(org(r).balance_micros, 0);
}

// Only the payer's balance is spent, so only the payer recharges.
TEST_F(ChainTest, AConsolidatedOrgNeverRechargesWhenUsagePassesThroughIt) {
  const OrgId r = root(user());
  const OrgId a = sub(r);
  ASSERT_TRUE(command(r, Grant{10'000, "t"}).ok);
  ASSERT_TRUE(command(a, SetPaymentMethod{PaymentMethod{"visa", "4242", 12, 2099}}).ok);
  ASSERT_TRUE(command(a, SetAutoRecharge{AutoRecharge{true, 1'000'000, 5'000}}).ok);  // always "below"
  ASSERT_EQ(charge(a, {event("e1", 100)})[0].status, ChargeStatus::accepted);
  EXPECT_EQ(card_charges(services()), 0u);
  EXPECT_EQ(org(a).balance_micros, 0);
}

TEST_F(ChainTest, AutoRechargeChargesTheCardAtMostOncePerBatch) {
  const OrgId r = root(user());
  ASSERT_TRUE(command(r, SetPaymentMethod{PaymentMethod{"visa", "4242", 12, 2099}}).ok);
  ASSERT_TRUE(command(r, SetAutoRecharge{AutoRecharge{true, 0, 1'000}}).ok);
  std::vector<ChargeEvent> events;
  for (int i = 0; i < 5; ++i) events.push_back(event(std::to_string(i), 600));  // one recharge covers the first only
  const auto out = charge(r, events);
  EXPECT_EQ(out[0].status, ChargeStatus::accepted);
  EXPECT_EQ(out[1].refusal, Refusal::insufficient_credits);
  EXPECT_EQ(card_charges(services()), 1u);
  EXPECT_EQ(org(r).balance_micros, 400);
}

}  // namespace
}  // namespace canopy::actors
