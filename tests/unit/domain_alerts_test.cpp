// Goal: the alert rules of CONTRACT.md "Alerts and webhooks" as domain/alerts.hpp decides them, stated
// independently of alerts.cpp:
//   - spend.threshold_crossed fires for a threshold p when, after a record, the cycle spend is at or
//     above p % of the monthly limit (spend * 100 >= p * limit, exactly) and it was not before the record
//     in the same cycle. A new cycle forgets what was reached in the old one. No limit: never.
//   - balance.low fires when the balance goes from at-or-above the configured line to below it, only
//     downward, once per crossing.
//   - org.paused / org.resumed fire on the paused flag's transitions, nothing while it stays.
//   - an auto-recharge payment fires auto_recharge.succeeded or auto_recharge.failed with its payment.
//   - alerts of one record come in a fixed order: thresholds ascending, balance.low, paused/resumed,
//     recharge.
// And the webhook helpers: which addresses count as private (the SSRF guard), the retry backoff, and
// the Canopy-Signature header against an HMAC-SHA256 vector computed outside Canopy.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/limits.hpp"
#include "domain/alerts.hpp"
#include "domain/records.hpp"

using namespace canopy;
using namespace canopy::domain;

namespace {

constexpr OrgId org{42};
constexpr Timestamp at = 1'764'131'160;  // 2025-11-26T04:26:00Z
constexpr Cycle this_cycle = 671;

AlertFacts facts(Micros spend, std::optional<Micros> limit, Micros balance = 1'000'000, bool paused = false,
                 Cycle cycle = this_cycle) {
  return AlertFacts{cycle, spend, limit, balance, paused};
}

AlertConfig thresholds(std::vector<std::uint16_t> percents) { return AlertConfig{std::move(percents), std::nullopt}; }

AlertConfig low_line(Micros line) { return AlertConfig{{}, line}; }

std::vector<Alert> between(const AlertFacts& before, const AlertFacts& after, const AlertConfig& config,
                           const PaymentRecorded* recharge = nullptr) {
  return alerts_between(before, after, config, org, at, recharge);
}

// The thresholds (in order) of the spend.threshold_crossed alerts in `alerts`.
std::vector<std::uint16_t> crossed(const std::vector<Alert>& alerts) {
  std::vector<std::uint16_t> out;
  for (const auto& a : alerts) {
    if (a.type == AlertType::spend_threshold_crossed) out.push_back(a.threshold_percent);
  }
  return out;
}

std::vector<AlertType> types(const std::vector<Alert>& alerts) {
  std::vector<AlertType> out;
  for (const auto& a : alerts) out.push_back(a.type);
  return out;
}

using P = std::vector<std::uint16_t>;

// --- spend thresholds: hand-picked cases ---------------------------------------------------------------

TEST(SpendThresholds, BelowTheLineNothingFires) {
  EXPECT_TRUE(between(facts(0, 1'000'000), facts(499'999, 1'000'000), thresholds({50})).empty());
}

TEST(SpendThresholds, ReachingTheLineExactlyFires) {
  const auto alerts = between(facts(499'999, 1'000'000), facts(500'000, 1'000'000), thresholds({50}));
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].type, AlertType::spend_threshold_crossed);
  EXPECT_EQ(alerts[0].threshold_percent, 50);
  EXPECT_EQ(alerts[0].cycle_spend_micros, 500'000);
  EXPECT_EQ(alerts[0].limit_micros, std::optional<Micros>(1'000'000));
  EXPECT_EQ(alerts[0].org, org);
  EXPECT_EQ(alerts[0].at, at);
}

TEST(SpendThresholds, JumpingPastTheLineFires) {
  EXPECT_EQ(crossed(between(facts(100, 1'000'000), facts(700'000, 1'000'000), thresholds({50}))), P({50}));
}

TEST(SpendThresholds, StayingAboveTheLineDoesNotFireAgain) {
  EXPECT_TRUE(between(facts(500'000, 1'000'000), facts(600'000, 1'000'000), thresholds({50})).empty());
  EXPECT_TRUE(between(facts(600'000, 1'000'000), facts(600'000, 1'000'000), thresholds({50})).empty());
}

TEST(SpendThresholds, OneRecordCrossingSeveralLinesFiresEachInAscendingOrder) {
  const auto alerts = between(facts(0, 1'000'000), facts(1'000'000, 1'000'000), thresholds({50, 80, 100}));
  EXPECT_EQ(crossed(alerts), P({50, 80, 100}));
  for (const auto& a : alerts) EXPECT_EQ(a.cycle_spend_micros, 1'000'000);
}

TEST(SpendThresholds, OnlyTheLinesNewlyReachedFire) {
  EXPECT_EQ(crossed(between(facts(600'000, 1'000'000), facts(850'000, 1'000'000), thresholds({50, 80, 100}))), P({80}));
}

TEST(SpendThresholds, AThresholdAbove100FiresOnlyPastTheLimit) {
  // Reachable when spend went past a limit that was later lowered, or with a raised line.
  EXPECT_TRUE(between(facts(0, 1'000'000), facts(1'000'000, 1'000'000), thresholds({150})).empty());
  EXPECT_EQ(crossed(between(facts(1'000'000, 1'000'000), facts(1'000'000, 600'000), thresholds({150}))), P({150}));
}

TEST(SpendThresholds, TheLineIsTheExactPercentRoundedUpToAWholeMicro) {
  // 50 % of 999 is 499.5: 499 is below it, 500 reaches it.
  EXPECT_TRUE(between(facts(0, 999), facts(499, 999), thresholds({50})).empty());
  EXPECT_EQ(crossed(between(facts(499, 999), facts(500, 999), thresholds({50}))), P({50}));
  // 1 % of 1 is 0.01: any spend at all reaches it.
  EXPECT_EQ(crossed(between(facts(0, 1), facts(1, 1), thresholds({1}))), P({1}));
}

TEST(SpendThresholds, WithoutALimitNothingFires) {
  EXPECT_TRUE(between(facts(0, std::nullopt), facts(10'000'000, std::nullopt), thresholds({1, 50, 100})).empty());
}

TEST(SpendThresholds, WithoutThresholdsNothingFires) {
  EXPECT_TRUE(between(facts(0, 1'000'000), facts(1'000'000, 1'000'000), AlertConfig{}).empty());
}

TEST(SpendThresholds, ANewCycleForgetsWhatTheOldOneReached) {
  const auto old_cycle = facts(900'000, 1'000'000, 1'000'000, false, this_cycle);
  // The first charge of the new cycle reaches 50 % again: it fires again.
  EXPECT_EQ(crossed(between(old_cycle, facts(500'000, 1'000'000, 1'000'000, false, this_cycle + 1), thresholds({50, 80}))),
            P({50}));
  // The roll itself (spend back to 0) fires nothing.
  EXPECT_TRUE(between(old_cycle, facts(0, 1'000'000, 1'000'000, false, this_cycle + 1), thresholds({50, 80})).empty());
}

TEST(SpendThresholds, LoweringTheLimitBelowTheSpendFiresTheLinesItNowPasses) {
  EXPECT_EQ(crossed(between(facts(600'000, 1'000'000), facts(600'000, 700'000), thresholds({50, 80, 100}))), P({80}));
}

TEST(SpendThresholds, RaisingTheLimitFiresNothingAndTheLineCanBeCrossedAgain) {
  EXPECT_TRUE(between(facts(900'000, 1'000'000), facts(900'000, 2'000'000), thresholds({80})).empty());
  EXPECT_EQ(crossed(between(facts(900'000, 2'000'000), facts(1'600'000, 2'000'000), thresholds({80}))), P({80}));
}

TEST(SpendThresholds, SettingALimitUnderAnExistingSpendFiresTheLinesReached) {
  EXPECT_EQ(crossed(between(facts(600'000, std::nullopt), facts(600'000, 1'000'000), thresholds({50, 80}))), P({50}));
}

TEST(SpendThresholds, RemovingTheLimitFiresNothing) {
  EXPECT_TRUE(between(facts(400'000, 1'000'000), facts(400'000, std::nullopt), thresholds({50})).empty());
}

// --- spend thresholds: every combination of a small grid against the rule ----------------------------

// The rule, in exact integer arithmetic: spend is at or above p % of the limit.
bool at_or_above(Micros spend, std::optional<Micros> limit, std::uint16_t p) {
  return limit && spend * 100 >= static_cast<Micros>(p) * *limit;
}

TEST(SpendThresholds, EveryCombinationOfAGridFollowsTheRule) {
  const std::vector<std::optional<Micros>> limit_grid = {std::nullopt, 1, 3, 999, 1'000, 1'000'000};
  const std::vector<Micros> spends = {0, 1, 2, 333, 499, 500, 501, 799, 800, 999, 1'000, 1'001, 1'500,
                                      499'999, 500'000, 800'000, 999'999, 1'000'000, 1'200'000};
  const std::vector<AlertConfig> configs = {thresholds({}), thresholds({50}), thresholds({50, 80, 100}),
                                            thresholds({1, 2, 33, 34, 66, 67, 99, 100}), thresholds({100, 120, 1000})};
  std::size_t checked = 0;
  for (const auto& config : configs) {
    for (const bool new_cycle : {false, true}) {
      for (const auto& limit_before : limit_grid) {
        for (const auto& limit_after : limit_grid) {
          for (const auto spend_before : spends) {
            for (const auto spend_after : spends) {
              const auto before = facts(spend_before, limit_before, 1'000'000, false, this_cycle);
              const auto after = facts(spend_after, limit_after, 1'000'000, false, this_cycle + (new_cycle ? 1 : 0));
              P expected;
              for (const auto p : config.spend_percent_thresholds) {
                const bool was = !new_cycle && at_or_above(spend_before, limit_before, p);
                if (!was && at_or_above(spend_after, limit_after, p)) expected.push_back(p);
              }
              const auto alerts = between(before, after, config);
              ASSERT_EQ(crossed(alerts), expected)
                  << "spend " << spend_before << " -> " << spend_after << ", limit "
                  << (limit_before ? std::to_string(*limit_before) : "none") << " -> "
                  << (limit_after ? std::to_string(*limit_after) : "none") << (new_cycle ? ", new cycle" : "");
              ASSERT_EQ(alerts.size(), expected.size()) << "only threshold alerts may fire here";
              for (const auto& a : alerts) {
                ASSERT_EQ(a.cycle_spend_micros, spend_after);
                ASSERT_EQ(a.limit_micros, limit_after);
              }
              ++checked;
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, configs.size() * 2 * limit_grid.size() * limit_grid.size() * spends.size() * spends.size());
}

// --- balance.low -----------------------------------------------------------------------------------

TEST(BalanceLow, FallingBelowTheLineFires) {
  const auto alerts = between(facts(0, std::nullopt, 2'500'000), facts(0, std::nullopt, 1'500'000), low_line(2'000'000));
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].type, AlertType::balance_low);
  EXPECT_EQ(alerts[0].balance_micros, 1'500'000);
  EXPECT_EQ(alerts[0].low_balance_micros, 2'000'000);
}

TEST(BalanceLow, EveryCombinationFiresOnlyOnADownwardCrossing) {
  constexpr Micros line = 2'000'000;
  const std::vector<Micros> balances = {0, 1, line - 1, line, line + 1, 5'000'000};
  for (const auto before : balances) {
    for (const auto after : balances) {
      const auto alerts = between(facts(0, std::nullopt, before), facts(0, std::nullopt, after), low_line(line));
      const bool expected = before >= line && after < line;
      EXPECT_EQ(alerts.size(), expected ? 1u : 0u) << before << " -> " << after;
    }
  }
}

TEST(BalanceLow, AtTheLineIsNotLow) {
  EXPECT_TRUE(between(facts(0, std::nullopt, 2'000'001), facts(0, std::nullopt, 2'000'000), low_line(2'000'000)).empty());
  EXPECT_EQ(between(facts(0, std::nullopt, 2'000'000), facts(0, std::nullopt, 1'999'999), low_line(2'000'000)).size(), 1u);
}

TEST(BalanceLow, StayingLowOrRecoveringFiresNothingAndAFreshDropFiresAgain) {
  const auto config = low_line(2'000'000);
  EXPECT_TRUE(between(facts(0, std::nullopt, 1'000'000), facts(0, std::nullopt, 500'000), config).empty());   // still low
  EXPECT_TRUE(between(facts(0, std::nullopt, 500'000), facts(0, std::nullopt, 6'000'000), config).empty());   // top-up
  EXPECT_EQ(between(facts(0, std::nullopt, 6'000'000), facts(0, std::nullopt, 1'000'000), config).size(), 1u); // again
}

TEST(BalanceLow, WithoutALineNothingFires) {
  EXPECT_TRUE(between(facts(0, std::nullopt, 5'000'000), facts(0, std::nullopt, 0), AlertConfig{}).empty());
}

TEST(BalanceLow, ALineOfZeroNeverFiresBecauseBalancesAreNeverNegative) {
  EXPECT_TRUE(between(facts(0, std::nullopt, 5'000'000), facts(0, std::nullopt, 0), low_line(0)).empty());
}

// --- paused / resumed --------------------------------------------------------------------------------

TEST(PausedResumed, PausingFiresOrgPausedWithTheSpendAndLimit) {
  const auto alerts = between(facts(900'000, 1'000'000, 1, false), facts(1'000'000, 1'000'000, 1, true), AlertConfig{});
  ASSERT_EQ(types(alerts), std::vector<AlertType>{AlertType::org_paused});
  EXPECT_EQ(alerts[0].cycle_spend_micros, 1'000'000);
  EXPECT_EQ(alerts[0].limit_micros, std::optional<Micros>(1'000'000));
}

TEST(PausedResumed, ResumingFiresOrgResumed) {
  EXPECT_EQ(types(between(facts(1'000'000, 1'000'000, 1, true), facts(1'000'000, 2'000'000, 1, false), AlertConfig{})),
            std::vector<AlertType>{AlertType::org_resumed});
}

TEST(PausedResumed, StayingPausedOrRunningFiresNothing) {
  EXPECT_TRUE(between(facts(900'000, 1'000'000, 1, true), facts(900'000, 1'000'000, 1, true), AlertConfig{}).empty());
  EXPECT_TRUE(between(facts(100, 1'000'000, 1, false), facts(200, 1'000'000, 1, false), AlertConfig{}).empty());
}

TEST(PausedResumed, ANewCycleThatLiftsThePauseFiresResumed) {
  EXPECT_EQ(types(between(facts(1'000'000, 1'000'000, 1, true, this_cycle), facts(0, 1'000'000, 1, false, this_cycle + 1),
                          thresholds({50, 100}))),
            std::vector<AlertType>{AlertType::org_resumed});
}

// --- auto-recharge --------------------------------------------------------------------------------

PaymentRecorded recharge(PaymentStatus status, std::string reason = {}) {
  PaymentRecorded p;
  p.org = org;
  p.payment = PaymentId{77};
  p.kind = PaymentKind::auto_recharge;
  p.status = status;
  p.amount_micros = 10'000'000;
  p.at = at;
  p.reason = std::move(reason);
  return p;
}

TEST(AutoRecharge, ASucceededRechargeFiresSucceededWithItsPaymentAndAmount) {
  const auto payment = recharge(PaymentStatus::succeeded);
  const auto alerts = between(facts(0, std::nullopt, 1'000'000), facts(0, std::nullopt, 11'000'000), AlertConfig{}, &payment);
  ASSERT_EQ(types(alerts), std::vector<AlertType>{AlertType::auto_recharge_succeeded});
  EXPECT_EQ(alerts[0].payment, PaymentId{77});
  EXPECT_EQ(alerts[0].amount_micros, 10'000'000);
}

TEST(AutoRecharge, AFailedRechargeFiresFailedWithTheReason) {
  const auto payment = recharge(PaymentStatus::failed, "card_declined");
  const auto alerts = between(facts(0, std::nullopt, 1'000'000), facts(0, std::nullopt, 1'000'000), AlertConfig{}, &payment);
  ASSERT_EQ(types(alerts), std::vector<AlertType>{AlertType::auto_recharge_failed});
  EXPECT_EQ(alerts[0].payment, PaymentId{77});
  EXPECT_EQ(alerts[0].amount_micros, 10'000'000);
  EXPECT_EQ(alerts[0].reason, "card_declined");
}

TEST(AutoRecharge, WithoutARechargeRecordNoRechargeAlertFires) {
  EXPECT_TRUE(between(facts(0, std::nullopt, 1'000'000), facts(0, std::nullopt, 11'000'000), AlertConfig{}).empty());
}

// --- several at once -----------------------------------------------------------------------------

TEST(AlertOrder, OneRecordsAlertsComeThresholdsThenBalanceLowThenPausedThenRecharge) {
  AlertConfig config{{50, 100}, 2'000'000};
  const auto payment = recharge(PaymentStatus::failed, "card_declined");
  const auto alerts = between(facts(0, 1'000'000, 3'000'000, false), facts(1'000'000, 1'000'000, 1'000'000, true), config,
                              &payment);
  EXPECT_EQ(types(alerts),
            (std::vector<AlertType>{AlertType::spend_threshold_crossed, AlertType::spend_threshold_crossed,
                                    AlertType::balance_low, AlertType::org_paused, AlertType::auto_recharge_failed}));
  EXPECT_EQ(crossed(alerts), P({50, 100}));
  for (const auto& a : alerts) {
    EXPECT_EQ(a.org, org);
    EXPECT_EQ(a.at, at);
    EXPECT_EQ(a.id, 0u) << "ids are given by the materializer, from the record's place in the journal";
  }
}

// --- alert ids and names -------------------------------------------------------------------------------

TEST(AlertIds, AreDeterministicNonzeroAndDistinctPerRecordOrgAndIndex) {
  std::set<std::uint64_t> seen;
  for (std::uint64_t seq = 0; seq < 200; ++seq) {
    for (std::uint64_t o = 1; o <= 5; ++o) {
      for (std::uint32_t k = 0; k < 6; ++k) {
        const auto id = alert_id(seq, OrgId{o}, k);
        EXPECT_NE(id, 0u);
        EXPECT_EQ(id, alert_id(seq, OrgId{o}, k));
        EXPECT_TRUE(seen.insert(id).second) << "collision at seq " << seq << " org " << o << " index " << k;
      }
    }
  }
  EXPECT_EQ(alert_id_text(1).rfind("evt_", 0), 0u);
}

TEST(AlertNames, EveryTypeHasItsContractNameAndParsesBack) {
  const std::vector<std::string> contract = {"spend.threshold_crossed", "balance.low",          "org.paused",
                                             "org.resumed",             "auto_recharge.succeeded", "auto_recharge.failed",
                                             "org.detached"};
  ASSERT_EQ(contract.size(), alert_type_count);
  for (std::size_t i = 0; i < alert_type_count; ++i) {
    const auto type = static_cast<AlertType>(i);
    EXPECT_EQ(name_of(type), contract[i]);
    EXPECT_EQ(parse_alert_type(contract[i]), type);
  }
  EXPECT_FALSE(parse_alert_type("balance.high"));
  EXPECT_FALSE(parse_alert_type(""));
  EXPECT_FALSE(parse_alert_type("Balance.Low"));
}

// --- alert settings ------------------------------------------------------------------------------------

TEST(AlertConfigCheck, AcceptsIncreasingPercentsInRangeAndALineInRange) {
  EXPECT_FALSE(check_alert_config(AlertConfig{{50, 80, 100}, 1'000'000}));
  EXPECT_FALSE(check_alert_config(AlertConfig{{1, limits::alert_threshold_percent_max}, 0}));
  EXPECT_FALSE(check_alert_config(AlertConfig{}));
}

TEST(AlertConfigCheck, RefusesOutOfRangeRepeatedOrTooManyValues) {
  EXPECT_TRUE(check_alert_config(thresholds({0})));
  EXPECT_TRUE(check_alert_config(thresholds({static_cast<std::uint16_t>(limits::alert_threshold_percent_max + 1)})));
  EXPECT_TRUE(check_alert_config(thresholds({80, 50})));
  EXPECT_TRUE(check_alert_config(thresholds({50, 50})));
  std::vector<std::uint16_t> many;
  for (std::size_t p = 1; p <= limits::alert_thresholds_max + 1; ++p) many.push_back(static_cast<std::uint16_t>(p));
  EXPECT_TRUE(check_alert_config(thresholds(many)));
  many.pop_back();
  EXPECT_FALSE(check_alert_config(thresholds(many)));
  EXPECT_TRUE(check_alert_config(low_line(-1)));
  EXPECT_TRUE(check_alert_config(low_line(limits::amount_micros_max + 1)));
}

// --- private addresses (the SSRF guard) -------------------------------------------------------------

bool private_v4(const char* text) {
  std::array<std::uint8_t, 4> b{};
  EXPECT_EQ(inet_pton(AF_INET, text, b.data()), 1) << text;
  return is_private_address(b.data(), b.size());
}

bool private_v6(const char* text) {
  std::array<std::uint8_t, 16> b{};
  EXPECT_EQ(inet_pton(AF_INET6, text, b.data()), 1) << text;
  return is_private_address(b.data(), b.size());
}

TEST(PrivateAddress, IPv4LoopbackPrivateLinkLocalCgnatUnspecifiedMulticastAndBroadcastAreRefused) {
  for (const char* a : {"127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255",
                        "192.168.0.1", "192.168.255.255", "169.254.169.254", "169.254.0.1", "100.64.0.1",
                        "100.127.255.255", "0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.250", "240.0.0.1",
                        "255.255.255.255"}) {
    EXPECT_TRUE(private_v4(a)) << a;
  }
}

TEST(PrivateAddress, IPv4PublicAddressesNextToThoseRangesAreAllowed) {
  for (const char* a : {"8.8.8.8", "1.1.1.1", "93.184.216.34", "126.255.255.255", "128.0.0.1", "9.255.255.255",
                        "11.0.0.0", "172.15.255.255", "172.32.0.0", "192.167.255.255", "192.169.0.0", "169.253.255.255",
                        "169.255.0.0", "100.63.255.255", "100.128.0.0", "223.255.255.255"}) {
    EXPECT_FALSE(private_v4(a)) << a;
  }
}

TEST(PrivateAddress, IPv6LoopbackUnspecifiedUniqueLocalLinkLocalAndMulticastAreRefused) {
  for (const char* a : {"::1", "::", "fc00::1", "fd12:3456:789a::1", "fdff:ffff::", "fe80::1", "febf:ffff::1", "ff02::1",
                        "ff05::1:3"}) {
    EXPECT_TRUE(private_v6(a)) << a;
  }
}

TEST(PrivateAddress, IPv6PublicAddressesAreAllowed) {
  for (const char* a : {"2001:4860:4860::8888", "2606:4700:4700::1111", "2a00:1450::1", "fbff:ffff::1"}) {
    EXPECT_FALSE(private_v6(a)) << a;
  }
}

TEST(PrivateAddress, IPv4MappedIPv6AddressesAreJudgedByTheirIPv4Address) {
  for (const char* a : {"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:192.168.1.1", "::ffff:169.254.169.254",
                        "::ffff:172.16.0.1", "::ffff:100.64.0.1", "::ffff:0.0.0.0"}) {
    EXPECT_TRUE(private_v6(a)) << a;
  }
  EXPECT_FALSE(private_v6("::ffff:8.8.8.8"));
  EXPECT_FALSE(private_v6("::ffff:93.184.216.34"));
}

TEST(PrivateAddress, IPv4ProtocolAssignmentAndBenchmarkingRangesAreRefused) {
  for (const char* a : {"192.0.0.1", "192.0.0.255", "198.18.0.1", "198.19.255.255"}) EXPECT_TRUE(private_v4(a)) << a;
  for (const char* a : {"192.0.1.1", "191.255.255.255", "198.17.255.255", "198.20.0.0"}) EXPECT_FALSE(private_v4(a)) << a;
}

// A gateway turns these back into the IPv4 address they carry (RFC 6052, RFC 3056), and ::/96 held
// the deprecated IPv4-compatible form: none may reach what the IPv4 rules refuse.
TEST(PrivateAddress, IPv6AddressesCarryingAnIPv4AddressAreJudgedByIt) {
  for (const char* a : {"64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "2002:a00:1::1",
                        "2002:c0a8:101::", "::127.0.0.1", "::10.0.0.1", "::8.8.8.8", "64:ff9b:1::808:808",
                        "fec0::1"}) {
    EXPECT_TRUE(private_v6(a)) << a;
  }
  for (const char* a : {"64:ff9b::808:808", "2002:808:808::1", "64:ff9b:2::1"}) EXPECT_FALSE(private_v6(a)) << a;
}

TEST(PrivateAddress, AnAddressOfAnUnknownLengthIsRefused) {
  const std::uint8_t five[5] = {8, 8, 8, 8, 8};
  EXPECT_TRUE(is_private_address(five, 5));
  EXPECT_TRUE(is_private_address(five, 0));
}

// --- retry backoff ---------------------------------------------------------------------------------

TEST(WebhookBackoff, StartsAtOneSecondAndDoublesEachFailure) {
  const std::vector<std::int64_t> expected = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048};
  for (std::uint32_t attempt = 1; attempt <= expected.size(); ++attempt) {
    EXPECT_EQ(webhook_backoff_seconds(attempt), expected[attempt - 1]) << "after attempt " << attempt;
  }
}

TEST(WebhookBackoff, IsCappedAtOneHour) {
  EXPECT_EQ(webhook_backoff_seconds(13), 3600);  // 4096 s would be past the cap
  EXPECT_EQ(webhook_backoff_seconds(20), 3600);
  EXPECT_EQ(webhook_backoff_seconds(64), 3600);
  EXPECT_EQ(webhook_backoff_seconds(1000), 3600);
  EXPECT_EQ(webhook_backoff_seconds(UINT32_MAX), 3600);
  for (std::uint32_t attempt = 1; attempt < 200; ++attempt) {
    EXPECT_LE(webhook_backoff_seconds(attempt), webhook_backoff_seconds(attempt + 1)) << attempt;
  }
}

TEST(WebhookBackoff, TwentyFourHoursOfRetriesIsAFewDozenAttempts) {
  std::int64_t elapsed = 0;
  std::uint32_t attempts = 1;
  while (elapsed + webhook_backoff_seconds(attempts) <= 24 * 3600) elapsed += webhook_backoff_seconds(attempts++);
  // 1 + 2 + … + 2048 = 4095 s, then hourly: 12 + 22 retries after the first attempt.
  EXPECT_EQ(attempts, 35u);
}

// --- signature -----------------------------------------------------------------------------------------

// Computed outside Canopy:
//   printf '%s' '1764131160.{"id":"evt_1","type":"balance.low"}' | openssl dgst -sha256 -hmac 'whsec_test'
TEST(WebhookSignature, IsTheHexHmacSha256OfTimeDotBodyKeyedWithTheSecret) {
  EXPECT_EQ(webhook_signature("whsec_test", 1'764'131'160, R"({"id":"evt_1","type":"balance.low"})"),
            "t=1764131160,v1=70e65d68b3fb26e5bcc305ca6403e92194eac3d807fb1dc07e5636319236d28e");
}

TEST(WebhookSignature, ChangesWithTheSecretTheTimeAndTheBody) {
  const auto base = webhook_signature("whsec_test", 1'764'131'160, R"({"id":"evt_1"})");
  EXPECT_NE(base, webhook_signature("whsec_tesu", 1'764'131'160, R"({"id":"evt_1"})"));
  EXPECT_NE(base.substr(base.find(",v1=")),
            webhook_signature("whsec_test", 1'764'131'161, R"({"id":"evt_1"})").substr(base.find(",v1=")));
  EXPECT_NE(base, webhook_signature("whsec_test", 1'764'131'160, R"({"id":"evt_2"})"));
}

TEST(WebhookSignature, AnEmptyBodySignsJustTheTimeAndADot) {
  // printf '%s' '1.' | openssl dgst -sha256 -hmac 'key'
  EXPECT_EQ(webhook_signature("key", 1, ""), "t=1,v1=53123bc365c2fe4bee48bc5cc6cd6c19699147d43513154ed34277c7c063e80f");
}

}  // namespace
