// Goal: the usage reports (CONTRACT.md "Usage", the GET rows) seen from outside through the real binary:
// GET /v1/orgs/{id}/usage and GET /v1/orgs/{id}/usage/sub-orgs, against numbers computed by hand for a
// scenario that crosses a month end and a year end on the manual clock.
//
// What must hold:
// - a charge counts in the usage of the org it was sent to (not of the orgs above it that paid for it),
//   on the UTC day it was accepted; credits are money in (grants, free credits, transfers in);
// - `daily` lists every day of the range, zeros included; by_event_type sums count, quantity and spend
//   per type; both lists are costliest first (docs/openapi.yaml); the totals are the sums;
// - ranges: last_7_days / last_30_days end today, this_month is the 1st..today, last_month the whole
//   previous month, from/to inclusive; nothing given is last_30_days; bad input is 400 invalid_request
//   with details.field naming range, from or to;
// - the sub-orgs report sums every descendant at any depth (not the org itself) and lists each;
// - developers read /usage but not /usage/sub-orgs, agents neither; non-members get 404; under
//   show-credits a direct member gets no *_micros field;
// - reports survive kill -9 and agree with the billing cycle spend.
//
// The scenario (Y is next year, so the manual clock only moves forward; money in micro-dollars).
// R is a business root, A its consolidated sub-org, A1 A's consolidated sub-org, B R's sub-org that pays
// for itself. Charges are sent by the owner (admin of R) to the org named.
//   Y-11-20 10:00     orgs created (R gets 5,000,000 free credits); grant 20,000,000 to R
//   Y-11-28 12:00     A  assistants.reply q3 100,000 | A1 broadcasts.sms q10 300,000 | R inbox.message q1 25,000
//   Y-11-30 12:00     transfer 2,000,000 R -> B
//   Y-11-30 23:59:59  A1 inbox.message q1 30,000
//   Y-12-01 00:00     A  assistants.reply q2 70,000 (R rolls into December: 5,000,000 free credits)
//   Y-12-15 09:00     A1 assistants.reply q1 40,000 | B inbox.message q4 60,000 | grant 1,000,000 to B
//   --- "december": the clock stays at Y-12-15 09:00
//   Y+1-01-01 00:00:05  R inbox.message q1 10,000 (R rolls into January: 5,000,000 free credits)
//   Y+1-01-02 12:00     B inbox.message q1 7,000
//   Y+1-01-03 10:00     A assistants.reply q1 5,000
//   --- "january": the clock stays at Y+1-01-03 10:00
#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/harness.hpp"

namespace canopy::test {
namespace {

namespace json = boost::json;

constexpr std::int64_t free_credits = 5'000'000;

int next_year() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  return tm.tm_year + 1900 + 1;
}

const int Y = next_year();

std::string ymd(int y, int m, int d) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
  return buf;
}
std::string rfc3339(int y, int m, int d, int hh, int mm, int ss) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, hh, mm, ss);
  return buf;
}
// Days of year Y (November, December) and Y+1 (January).
std::string nov(int d) { return ymd(Y, 11, d); }
std::string dec(int d) { return ymd(Y, 12, d); }
std::string jan(int d) { return ymd(Y + 1, 1, d); }

// "YYYY-MM-DD" + n days.
std::string plus_days(const std::string& day, int n) {
  std::tm tm{};
  tm.tm_year = std::stoi(day.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(day.substr(5, 2)) - 1;
  tm.tm_mday = std::stoi(day.substr(8, 2)) + n;
  const std::time_t t = ::timegm(&tm);
  std::tm out{};
  ::gmtime_r(&t, &out);
  return ymd(out.tm_year + 1900, out.tm_mon + 1, out.tm_mday);
}

// details.<key> of an error body, or "".
std::string error_detail(const HttpResult& r, const char* key) {
  const auto v = r.json();
  const auto* error = v.is_object() ? v.as_object().if_contains("error") : nullptr;
  const auto* details = error && error->is_object() ? error->as_object().if_contains("details") : nullptr;
  const auto* value = details && details->is_object() ? details->as_object().if_contains(key) : nullptr;
  return value && value->is_string() ? std::string(value->as_string()) : "";
}

struct TypeRow {
  std::int64_t count = 0, quantity = 0, spend = 0;
  friend bool operator==(const TypeRow&, const TypeRow&) = default;
  friend std::ostream& operator<<(std::ostream& o, const TypeRow& t) {
    return o << "{count " << t.count << ", quantity " << t.quantity << ", spend " << t.spend << "}";
  }
};
using Types = std::map<std::string, TypeRow>;
using Days = std::map<std::string, std::int64_t>;  // date -> spend, only days with spend

// by_event_type as a map (the order is checked on its own).
Types by_type(const json::value& report) {
  Types out;
  for (const auto& row : report.at("by_event_type").as_array()) {
    out[json_str(row, {"type"})] = TypeRow{json_int(row, {"count"}), json_int(row, {"quantity"}),
                                          json_int(row, {"spend_micros"})};
  }
  return out;
}

// The days of `daily` with spend; and checks that `daily` is every day from..to, in order, once.
Days spend_days(const json::value& report) {
  Days out;
  const auto from = json_str(report, {"from"});
  const auto to = json_str(report, {"to"});
  const auto& daily = report.at("daily").as_array();
  std::string want = from;
  for (std::size_t i = 0; i < daily.size(); ++i) {
    EXPECT_EQ(json_str(daily[i], {"date"}), want) << "daily[" << i << "]";
    const auto spend = json_int(daily[i], {"spend_micros"});
    if (spend != 0) out[json_str(daily[i], {"date"})] = spend;
    if (i + 1 < daily.size()) want = plus_days(want, 1);
  }
  EXPECT_EQ(want, to) << "daily does not end on `to`";
  return out;
}

std::size_t day_count(const json::value& report) { return report.at("daily").as_array().size(); }

// Every path in `v` whose key ends in "_micros".
void find_micros(const json::value& v, const std::string& path, std::vector<std::string>& out) {
  if (v.is_object()) {
    for (const auto& [k, child] : v.as_object()) {
      const std::string key(k);
      if (key.size() >= 7 && key.compare(key.size() - 7, 7, "_micros") == 0) out.push_back(path + "." + key);
      find_micros(child, path + "." + key, out);
    }
  } else if (v.is_array()) {
    for (std::size_t i = 0; i < v.as_array().size(); ++i) {
      find_micros(v.as_array()[i], path + "[" + std::to_string(i) + "]", out);
    }
  }
}

struct OrgRow {
  std::string name, parent_id;
  std::int64_t spend = 0, credits = 0;
  friend bool operator==(const OrgRow&, const OrgRow&) = default;
  friend std::ostream& operator<<(std::ostream& o, const OrgRow& r) {
    return o << "{" << r.name << ", parent " << r.parent_id << ", spend " << r.spend << ", credits " << r.credits << "}";
  }
};

// The organizations of a sub-orgs report, by org id.
std::map<std::string, OrgRow> org_rows(const json::value& report) {
  std::map<std::string, OrgRow> out;
  for (const auto& row : report.at("organizations").as_array()) {
    const auto id = json_str(row, {"org_id"});
    EXPECT_FALSE(out.count(id)) << id << " listed twice";
    out[id] = OrgRow{json_str(row, {"name"}), json_str(row, {"parent_id"}), json_int(row, {"spend_micros"}),
                     json_int(row, {"credits_micros"})};
  }
  return out;
}

class Usage : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<CanopyProcess>(dir_.str("data"), std::vector<std::string>{"--clock", "manual"});
    server_->start();
    op_ = std::make_unique<Client>(server_->port());
    clock(rfc3339(Y, 11, 20, 10, 0, 0));
    owner = create_user(op(), "owner@example.com", "Owner");
    r = create_root(op(), owner.id, "business", "Agency");
    admin_ = std::make_unique<Client>(server_->port(), owner.token);
    a = create_sub_org(admin(), r, "Client A");
    a1 = create_sub_org(admin(), a, "Team A1");
    b = create_sub_org(admin(), r, "Client B");
  }

  void clock(const std::string& now) {
    auto res = op().post("/v1/admin/clock", {{"now", now}});
    ASSERT_EQ(res.status, 200u) << now << ": " << res.body;
  }

  void charge(const std::string& org, const std::string& type, std::int64_t quantity, std::int64_t cost) {
    const std::string id = "evt-" + std::to_string(++events_);
    auto res = admin().post("/v1/orgs/" + org + "/usage",
                            {{"id", id}, {"type", type}, {"quantity", quantity}, {"cost_micros", cost}});
    ASSERT_EQ(res.status, 200u) << res.body;
    ASSERT_EQ(json_str(res.json(), {"status"}), "accepted");
  }

  // The scenario of the file comment up to "december" (the clock stays at Y-12-15 09:00).
  void run_to_december() {
    grant(op(), r, 20'000'000);
    auto off = admin().put("/v1/orgs/" + b + "/billing/consolidated", {{"enabled", false}});
    ASSERT_EQ(off.status, 200u) << off.body;
    clock(rfc3339(Y, 11, 28, 12, 0, 0));
    charge(a, "assistants.reply", 3, 100'000);
    charge(a1, "broadcasts.sms", 10, 300'000);
    charge(r, "inbox.message", 1, 25'000);
    clock(rfc3339(Y, 11, 30, 12, 0, 0));
    auto moved = admin().post("/v1/orgs/" + r + "/billing/transfers", {{"to_org_id", b}, {"amount_micros", 2'000'000}},
                              {{"Idempotency-Key", "move-1"}});
    ASSERT_EQ(moved.status, 201u) << moved.body;
    clock(rfc3339(Y, 11, 30, 23, 59, 59));
    charge(a1, "inbox.message", 1, 30'000);
    clock(rfc3339(Y, 12, 1, 0, 0, 0));
    charge(a, "assistants.reply", 2, 70'000);
    clock(rfc3339(Y, 12, 15, 9, 0, 0));
    charge(a1, "assistants.reply", 1, 40'000);
    charge(b, "inbox.message", 4, 60'000);
    grant(op(), b, 1'000'000);
  }

  // The whole scenario (the clock stays at Y+1-01-03 10:00).
  void run_to_january() {
    run_to_december();
    clock(rfc3339(Y + 1, 1, 1, 0, 0, 5));
    charge(r, "inbox.message", 1, 10'000);
    clock(rfc3339(Y + 1, 1, 2, 12, 0, 0));
    charge(b, "inbox.message", 1, 7'000);
    clock(rfc3339(Y + 1, 1, 3, 10, 0, 0));
    charge(a, "assistants.reply", 1, 5'000);
  }

  json::value usage(Client& as, const std::string& org, const std::string& query = {}) {
    auto res = as.get("/v1/orgs/" + org + "/usage" + (query.empty() ? "" : "?" + query));
    EXPECT_EQ(res.status, 200u) << org << "/usage?" << query << ": " << res.body;
    return res.json();
  }
  json::value usage(const std::string& org, const std::string& query = {}) { return usage(admin(), org, query); }
  json::value sub_usage(Client& as, const std::string& org, const std::string& query = {}) {
    auto res = as.get("/v1/orgs/" + org + "/usage/sub-orgs" + (query.empty() ? "" : "?" + query));
    EXPECT_EQ(res.status, 200u) << org << "/usage/sub-orgs?" << query << ": " << res.body;
    return res.json();
  }
  json::value sub_usage(const std::string& org, const std::string& query = {}) { return sub_usage(admin(), org, query); }

  std::int64_t cycle_spend(const std::string& org) {
    auto res = op().get("/v1/orgs/" + org + "/billing");
    EXPECT_EQ(res.status, 200u) << res.body;
    return json_int(res.json(), {"cycle", "spend_micros"});
  }

  // A new user whose only access is a direct membership in `org` with `role`.
  std::string join(const std::string& org, const std::string& role) {
    const std::string email = role + "-" + std::to_string(++members_) + "@example.com";
    auto invited = admin().post("/v1/orgs/" + org + "/invitations", {{"email", email}, {"role", role}});
    EXPECT_EQ(invited.status, 201u) << invited.body;
    const auto link = json_str(invited.json(), {"link"});
    Client anonymous(server_->port(), "");
    auto accepted = anonymous.post("/v1/invitations/" + link.substr(link.rfind('/') + 1) + "/accept", {{"name", role}});
    EXPECT_EQ(accepted.status, 200u) << accepted.body;
    return json_str(accepted.json(), {"token"});
  }

  void restart_after_kill9() {
    server_->kill9();
    server_->start();
    op_ = std::make_unique<Client>(server_->port());
    admin_ = std::make_unique<Client>(server_->port(), owner.token);
  }

  Client& op() { return *op_; }
  Client& admin() { return *admin_; }
  std::uint16_t port() const { return server_->port(); }

  CreatedUser owner;
  std::string r, a, a1, b;

 private:
  TempDir dir_;
  std::unique_ptr<CanopyProcess> server_;
  std::unique_ptr<Client> op_;
  std::unique_ptr<Client> admin_;
  int events_ = 0;
  int members_ = 0;
};

// --- one org: presets in December ---------------------------------------------------------------

TEST_F(Usage, ThisMonthRunsFromTheFirstToTodayWithEveryDay) {
  run_to_december();
  const auto v = usage(a, "range=this_month");
  EXPECT_EQ(json_str(v, {"org_id"}), a);
  EXPECT_EQ(json_str(v, {"from"}), dec(1));
  EXPECT_EQ(json_str(v, {"to"}), dec(15));
  EXPECT_EQ(day_count(v), 15u);
  EXPECT_EQ(spend_days(v), (Days{{dec(1), 70'000}}));
  EXPECT_EQ(json_int(v, {"total_spend_micros"}), 70'000);
  EXPECT_EQ(json_int(v, {"total_credits_micros"}), 0);
  EXPECT_EQ(by_type(v), (Types{{"assistants.reply", {1, 2, 70'000}}}));
}

TEST_F(Usage, LastMonthIsTheWholePreviousMonth) {
  run_to_december();
  const auto v = usage(a, "range=last_month");
  EXPECT_EQ(json_str(v, {"from"}), nov(1));
  EXPECT_EQ(json_str(v, {"to"}), nov(30));
  EXPECT_EQ(day_count(v), 30u);
  EXPECT_EQ(spend_days(v), (Days{{nov(28), 100'000}}));
  EXPECT_EQ(json_int(v, {"total_spend_micros"}), 100'000);
  EXPECT_EQ(by_type(v), (Types{{"assistants.reply", {1, 3, 100'000}}}));
}

TEST_F(Usage, AChargeCountsAtTheOrgItWasSentToNotAtThePayerAbove) {
  run_to_december();
  // R paid for A's and A1's November charges; its own usage is only its own inbox.message.
  const auto v = usage(r, "range=last_month");
  EXPECT_EQ(json_int(v, {"total_spend_micros"}), 25'000);
  EXPECT_EQ(spend_days(v), (Days{{nov(28), 25'000}}));
  EXPECT_EQ(by_type(v), (Types{{"inbox.message", {1, 1, 25'000}}}));
}

TEST_F(Usage, TheMonthsLastSecondCountsInThatMonth) {
  run_to_december();
  const auto v = usage(a1, "range=last_month");
  EXPECT_EQ(spend_days(v), (Days{{nov(28), 300'000}, {nov(30), 30'000}}));
  EXPECT_EQ(json_int(v, {"total_spend_micros"}), 330'000);
  EXPECT_EQ(by_type(v), (Types{{"broadcasts.sms", {1, 10, 300'000}}, {"inbox.message", {1, 1, 30'000}}}));
  const auto now = usage(a1, "range=this_month");
  EXPECT_EQ(spend_days(now), (Days{{dec(15), 40'000}}));  // today is the range's last day
}

TEST_F(Usage, CreditsAreGrantsFreeCreditsAndTransfersIn) {
  run_to_december();
  // R: 5,000,000 free at creation and the 20,000,000 grant in November; the 2,000,000 it transferred
  // out is not a credit. December so far: the cycle's free credits on the 1st.
  EXPECT_EQ(json_int(usage(r, "range=last_month"), {"total_credits_micros"}), free_credits + 20'000'000);
  EXPECT_EQ(json_int(usage(r, "range=this_month"), {"total_credits_micros"}), free_credits);
  // B: the transfer in (November), the grant (December).
  EXPECT_EQ(json_int(usage(b, "range=last_month"), {"total_credits_micros"}), 2'000'000);
  EXPECT_EQ(json_int(usage(b, "range=this_month"), {"total_credits_micros"}), 1'000'000);
  EXPECT_EQ(json_int(usage(a, "range=last_month"), {"total_credits_micros"}), 0);
  // A day-sized range finds each on its day.
  EXPECT_EQ(json_int(usage(r, "from=" + nov(20) + "&to=" + nov(20)), {"total_credits_micros"}), free_credits + 20'000'000);
  EXPECT_EQ(json_int(usage(b, "from=" + nov(30) + "&to=" + nov(30)), {"total_credits_micros"}), 2'000'000);
  EXPECT_EQ(json_int(usage(r, "from=" + nov(30) + "&to=" + nov(30)), {"total_credits_micros"}), 0);
  EXPECT_EQ(json_int(usage(r, "from=" + dec(1) + "&to=" + dec(1)), {"total_credits_micros"}), free_credits);
}

TEST_F(Usage, ARangeWithNoUsageIsEveryDayAtZero) {
  run_to_december();
  const auto v = usage(b, "range=last_month");
  EXPECT_EQ(day_count(v), 30u);
  EXPECT_EQ(spend_days(v), Days{});
  EXPECT_EQ(json_int(v, {"total_spend_micros"}), 0);
  EXPECT_TRUE(v.at("by_event_type").as_array().empty());
}

// --- one org: January, across the year end ------------------------------------------------------------

TEST_F(Usage, FromToSpansBothMonthsAndTheYearEnd) {
  run_to_january();
  const std::string q = "from=" + nov(28) + "&to=" + jan(3);
  const auto v = usage(a, q);
  EXPECT_EQ(json_str(v, {"from"}), nov(28));
  EXPECT_EQ(json_str(v, {"to"}), jan(3));
  EXPECT_EQ(day_count(v), 37u);  // Nov 28..30, all of December, Jan 1..3
  EXPECT_EQ(spend_days(v), (Days{{nov(28), 100'000}, {dec(1), 70'000}, {jan(3), 5'000}}));
  EXPECT_EQ(json_int(v, {"total_spend_micros"}), 175'000);
  EXPECT_EQ(json_int(v, {"total_credits_micros"}), 0);
  EXPECT_EQ(by_type(v), (Types{{"assistants.reply", {3, 6, 175'000}}}));

  const auto root = usage(r, q);
  EXPECT_EQ(spend_days(root), (Days{{nov(28), 25'000}, {jan(1), 10'000}}));
  EXPECT_EQ(json_int(root, {"total_spend_micros"}), 35'000);
  // The free credits of December 1 and January 1; November 20's are before the range.
  EXPECT_EQ(json_int(root, {"total_credits_micros"}), 2 * free_credits);
  EXPECT_EQ(by_type(root), (Types{{"inbox.message", {2, 2, 35'000}}}));
}

TEST_F(Usage, FromToCoveringWholeMonthsAgreesWithTheDays) {
  run_to_january();
  // All of November and December (read from the monthly buckets) = the same days in two ranges that
  // are not whole months (read day by day).
  const auto whole = usage(a1, "from=" + nov(1) + "&to=" + dec(31));
  const auto first = usage(a1, "from=" + nov(1) + "&to=" + nov(29));
  const auto rest = usage(a1, "from=" + nov(30) + "&to=" + dec(31));
  EXPECT_EQ(json_int(whole, {"total_spend_micros"}),
            json_int(first, {"total_spend_micros"}) + json_int(rest, {"total_spend_micros"}));
  EXPECT_EQ(json_int(whole, {"total_spend_micros"}), 370'000);
  Types sum = by_type(first);
  for (const auto& [type, t] : by_type(rest)) {
    sum[type].count += t.count;
    sum[type].quantity += t.quantity;
    sum[type].spend += t.spend;
  }
  EXPECT_EQ(by_type(whole), sum);
  EXPECT_EQ(by_type(whole), (Types{{"assistants.reply", {1, 1, 40'000}},
                                   {"broadcasts.sms", {1, 10, 300'000}},
                                   {"inbox.message", {1, 1, 30'000}}}));
  const auto credits = usage(r, "from=" + nov(1) + "&to=" + dec(31));
  EXPECT_EQ(json_int(credits, {"total_credits_micros"}), free_credits + 20'000'000 + free_credits);
}

TEST_F(Usage, PresetsInJanuaryReachBackIntoDecember) {
  run_to_january();
  const auto this_month = usage(r, "range=this_month");
  EXPECT_EQ(json_str(this_month, {"from"}), jan(1));
  EXPECT_EQ(json_str(this_month, {"to"}), jan(3));
  EXPECT_EQ(spend_days(this_month), (Days{{jan(1), 10'000}}));
  EXPECT_EQ(json_int(this_month, {"total_credits_micros"}), free_credits);

  const auto last_month = usage(r, "range=last_month");
  EXPECT_EQ(json_str(last_month, {"from"}), dec(1));
  EXPECT_EQ(json_str(last_month, {"to"}), dec(31));
  EXPECT_EQ(day_count(last_month), 31u);
  EXPECT_EQ(json_int(last_month, {"total_spend_micros"}), 0);
  EXPECT_EQ(json_int(last_month, {"total_credits_micros"}), free_credits);

  const auto week = usage(a, "range=last_7_days");
  EXPECT_EQ(json_str(week, {"from"}), dec(28));
  EXPECT_EQ(json_str(week, {"to"}), jan(3));
  EXPECT_EQ(spend_days(week), (Days{{jan(3), 5'000}}));

  const auto thirty = usage(a, "range=last_30_days");
  EXPECT_EQ(json_str(thirty, {"from"}), dec(5));
  EXPECT_EQ(json_str(thirty, {"to"}), jan(3));
  EXPECT_EQ(day_count(thirty), 30u);
  EXPECT_EQ(json_int(thirty, {"total_spend_micros"}), 5'000);  // December 1's 70,000 is 34 days ago
}

TEST_F(Usage, NoRangeMeansTheLast30Days) {
  run_to_january();
  EXPECT_EQ(usage(a), usage(a, "range=last_30_days"));
  EXPECT_EQ(sub_usage(r), sub_usage(r, "range=last_30_days"));
}

// docs/openapi.yaml: by_event_type "by spend, highest first"; organizations "by spend, highest first
// (then by name)". The scenario's spends are ordered differently from the names.
TEST_F(Usage, EventTypesAndOrganizationsAreListedCostliestFirst) {
  run_to_january();
  const auto v = sub_usage(r, "from=" + nov(1) + "&to=" + jan(31));
  std::vector<std::string> types;
  for (const auto& row : v.at("by_event_type").as_array()) types.push_back(json_str(row, {"type"}));
  // broadcasts.sms 300,000; assistants.reply 215,000; inbox.message 97,000.
  EXPECT_EQ(types, (std::vector<std::string>{"broadcasts.sms", "assistants.reply", "inbox.message"}));
  std::vector<std::string> orgs;
  for (const auto& row : v.at("organizations").as_array()) orgs.push_back(json_str(row, {"org_id"}));
  // Team A1 370,000; Client A 175,000; Client B 67,000.
  EXPECT_EQ(orgs, (std::vector<std::string>{a1, a, b}));
  // All at zero: by name.
  const auto quiet = sub_usage(r, "from=2030-01-01&to=2030-01-31");
  orgs.clear();
  for (const auto& row : quiet.at("organizations").as_array()) orgs.push_back(json_str(row, {"org_id"}));
  EXPECT_EQ(orgs, (std::vector<std::string>{a, b, a1}));  // Client A, Client B, Team A1
}

// --- the sub-orgs report -------------------------------------------------------------------------------

TEST_F(Usage, SubOrgsCoversChildrenAndGrandchildrenButNotTheOrgItself) {
  run_to_january();
  const auto v = sub_usage(r, "from=" + nov(28) + "&to=" + jan(3));
  EXPECT_EQ(json_str(v, {"org_id"}), r);
  EXPECT_EQ(json_str(v, {"from"}), nov(28));
  EXPECT_EQ(json_str(v, {"to"}), jan(3));
  EXPECT_EQ(day_count(v), 37u);
  // A 175,000 + A1 370,000 + B 67,000; R's own 35,000 is not in it.
  EXPECT_EQ(json_int(v, {"total_spend_micros"}), 612'000);
  // B's transfer in and grant; R's free credits are R's own.
  EXPECT_EQ(json_int(v, {"total_credits_micros"}), 3'000'000);
  EXPECT_EQ(spend_days(v), (Days{{nov(28), 400'000},
                                 {nov(30), 30'000},
                                 {dec(1), 70'000},
                                 {dec(15), 100'000},
                                 {jan(2), 7'000},
                                 {jan(3), 5'000}}));
  EXPECT_EQ(by_type(v), (Types{{"assistants.reply", {4, 7, 215'000}},
                               {"broadcasts.sms", {1, 10, 300'000}},
                               {"inbox.message", {3, 6, 97'000}}}));
  EXPECT_EQ(org_rows(v), (std::map<std::string, OrgRow>{{a, {"Client A", r, 175'000, 0}},
                                                         {a1, {"Team A1", a, 370'000, 0}},
                                                         {b, {"Client B", r, 67'000, 3'000'000}}}));
}

TEST_F(Usage, SubOrgsOfAMiddleOrgIsItsSubtreeAndOfALeafIsEmpty) {
  run_to_january();
  const std::string q = "from=" + nov(28) + "&to=" + jan(3);
  const auto middle = sub_usage(a, q);
  EXPECT_EQ(org_rows(middle), (std::map<std::string, OrgRow>{{a1, {"Team A1", a, 370'000, 0}}}));
  EXPECT_EQ(json_int(middle, {"total_spend_micros"}), 370'000);
  EXPECT_EQ(spend_days(middle), (Days{{nov(28), 300'000}, {nov(30), 30'000}, {dec(15), 40'000}}));

  const auto leaf = sub_usage(a1, q);
  EXPECT_TRUE(leaf.at("organizations").as_array().empty());
  EXPECT_EQ(json_int(leaf, {"total_spend_micros"}), 0);
  EXPECT_EQ(json_int(leaf, {"total_credits_micros"}), 0);
  EXPECT_EQ(day_count(leaf), 37u);
  EXPECT_EQ(spend_days(leaf), Days{});
  EXPECT_TRUE(leaf.at("by_event_type").as_array().empty());
}

TEST_F(Usage, SubOrgsThisMonthAndLastMonthInDecember) {
  run_to_december();
  const auto now = sub_usage(r, "range=this_month");
  EXPECT_EQ(json_str(now, {"from"}), dec(1));
  EXPECT_EQ(json_str(now, {"to"}), dec(15));
  EXPECT_EQ(json_int(now, {"total_spend_micros"}), 170'000);
  EXPECT_EQ(json_int(now, {"total_credits_micros"}), 1'000'000);
  EXPECT_EQ(spend_days(now), (Days{{dec(1), 70'000}, {dec(15), 100'000}}));
  EXPECT_EQ(by_type(now), (Types{{"assistants.reply", {2, 3, 110'000}}, {"inbox.message", {1, 4, 60'000}}}));
  EXPECT_EQ(org_rows(now), (std::map<std::string, OrgRow>{{a, {"Client A", r, 70'000, 0}},
                                                          {a1, {"Team A1", a, 40'000, 0}},
                                                          {b, {"Client B", r, 60'000, 1'000'000}}}));

  const auto before = sub_usage(r, "range=last_month");
  EXPECT_EQ(json_str(before, {"from"}), nov(1));
  EXPECT_EQ(json_str(before, {"to"}), nov(30));
  EXPECT_EQ(json_int(before, {"total_spend_micros"}), 430'000);
  EXPECT_EQ(json_int(before, {"total_credits_micros"}), 2'000'000);
  EXPECT_EQ(spend_days(before), (Days{{nov(28), 400'000}, {nov(30), 30'000}}));
  EXPECT_EQ(by_type(before), (Types{{"assistants.reply", {1, 3, 100'000}},
                                    {"broadcasts.sms", {1, 10, 300'000}},
                                    {"inbox.message", {1, 1, 30'000}}}));
}

TEST_F(Usage, TheSubOrgsTotalsAreTheSumsOfTheDescendantsOwnReports) {
  run_to_january();
  const std::string q = "from=" + nov(1) + "&to=" + jan(31);
  const auto all = sub_usage(r, q);
  std::int64_t spend = 0, credits = 0;
  Types types;
  for (const auto& org : {a, a1, b}) {
    const auto one = usage(org, q);
    spend += json_int(one, {"total_spend_micros"});
    credits += json_int(one, {"total_credits_micros"});
    for (const auto& [type, t] : by_type(one)) {
      types[type].count += t.count;
      types[type].quantity += t.quantity;
      types[type].spend += t.spend;
    }
    EXPECT_EQ(org_rows(all).at(org).spend, json_int(one, {"total_spend_micros"})) << org;
    EXPECT_EQ(org_rows(all).at(org).credits, json_int(one, {"total_credits_micros"})) << org;
  }
  EXPECT_EQ(json_int(all, {"total_spend_micros"}), spend);
  EXPECT_EQ(json_int(all, {"total_credits_micros"}), credits);
  EXPECT_EQ(by_type(all), types);
}

// --- bad ranges ----------------------------------------------------------------------------------------

TEST_F(Usage, BadRangesAre400NamingTheParameter) {
  struct Case {
    std::string query, field;
  };
  const std::vector<Case> cases = {
      {"range=last_week", "range"},
      {"range=", "range"},
      {"range=this_month&from=2030-01-01&to=2030-01-31", "range"},
      {"from=2030-01-01", "to"},
      {"to=2030-01-31", "from"},
      {"from=2030-1-01&to=2030-01-31", "from"},
      {"from=2030-02-30&to=2030-03-31", "from"},
      {"from=2030-01-01&to=tomorrow", "to"},
      {"from=2030-01-01&to=2030-02-29", "to"},   // 2030 is not a leap year
      {"from=2030-02-01&to=2030-01-31", "from"},  // from after to
      {"from=2030-01-01&to=2031-01-02", "to"},    // 367 days
  };
  for (const auto& c : cases) {
    for (const std::string path : {"/usage?", "/usage/sub-orgs?"}) {
      auto res = admin().get("/v1/orgs/" + r + path + c.query);
      EXPECT_EQ(res.status, 400u) << path << c.query << ": " << res.body;
      EXPECT_EQ(res.error_code(), "invalid_request") << path << c.query;
      EXPECT_EQ(error_detail(res, "field"), c.field) << path << c.query << ": " << res.body;
    }
  }
}

TEST_F(Usage, The366DaysOfTheLimitAreAccepted) {
  const auto v = usage(r, "from=2030-01-01&to=2031-01-01");
  EXPECT_EQ(day_count(v), 366u);
  EXPECT_EQ(json_str(v.at("daily").as_array().back(), {"date"}), "2031-01-01");
  EXPECT_EQ(day_count(sub_usage(r, "from=2032-01-01&to=2032-12-31")), 366u);  // a leap year
}

// --- who may read --------------------------------------------------------------------------------------

TEST_F(Usage, AdminsManagersAndDevelopersReadUsageAgentsDoNot) {
  run_to_december();
  const std::map<std::string, unsigned> want = {{"admin", 200}, {"manager", 200}, {"developer", 200}, {"agent", 403}};
  for (const auto& [role, status] : want) {
    Client member(port(), join(r, role));
    auto res = member.get("/v1/orgs/" + r + "/usage?range=last_month");
    EXPECT_EQ(res.status, status) << role << ": " << res.body;
    if (status == 200) {
      EXPECT_EQ(json_int(res.json(), {"total_spend_micros"}), 25'000) << role;
    } else {
      EXPECT_EQ(res.error_code(), "forbidden") << role;
    }
  }
}

TEST_F(Usage, OnlyAdminsAndManagersReadTheSubOrgsReport) {
  run_to_december();
  const std::map<std::string, unsigned> want = {{"admin", 200}, {"manager", 200}, {"developer", 403}, {"agent", 403}};
  for (const auto& [role, status] : want) {
    Client member(port(), join(r, role));
    auto res = member.get("/v1/orgs/" + r + "/usage/sub-orgs?range=last_month");
    EXPECT_EQ(res.status, status) << role << ": " << res.body;
    if (status == 200) {
      EXPECT_EQ(json_int(res.json(), {"total_spend_micros"}), 430'000) << role;
    } else {
      EXPECT_EQ(res.error_code(), "forbidden") << role;
    }
  }
}

TEST_F(Usage, AnAdminOfAnAncestorReadsTheSubOrgsReportsAtAnyDepth) {
  run_to_december();
  // The owner is a member of R only.
  EXPECT_EQ(json_int(usage(a1, "range=last_month"), {"total_spend_micros"}), 330'000);
  EXPECT_EQ(json_int(sub_usage(a, "range=last_month"), {"total_spend_micros"}), 330'000);
}

TEST_F(Usage, NonMembersAndMembersOfAChildGetNotFound) {
  run_to_december();
  const auto stranger = create_user(op(), "stranger@example.com", "Stranger");
  create_root(op(), stranger.id, "business", "Elsewhere");
  Client outsider(port(), stranger.token);
  Client child_admin(port(), join(a, "admin"));  // admin of A, not of R
  for (Client* who : {&outsider, &child_admin}) {
    for (const std::string path : {"/usage", "/usage/sub-orgs"}) {
      auto res = who->get("/v1/orgs/" + r + path);
      EXPECT_EQ(res.status, 404u) << path << ": " << res.body;
      EXPECT_EQ(res.error_code(), "not_found") << path;
    }
  }
  // The admin of A reads A's own reports.
  EXPECT_EQ(json_int(usage(child_admin, a, "range=last_month"), {"total_spend_micros"}), 100'000);
  EXPECT_EQ(json_int(sub_usage(child_admin, a, "range=last_month"), {"total_spend_micros"}), 330'000);
}

TEST_F(Usage, UnderShowCreditsADirectMemberGetsNoMoneyButTheAncestorAdminDoes) {
  run_to_december();
  auto limited = admin().put("/v1/orgs/" + a + "/billing/spending-limit", {{"monthly_limit_micros", 10'000'000}});
  ASSERT_EQ(limited.status, 200u) << limited.body;
  auto on = admin().put("/v1/orgs/" + a + "/settings/show-credits-balance", {{"enabled", true}});
  ASSERT_EQ(on.status, 200u) << on.body;
  Client developer(port(), join(a, "developer"));
  Client manager(port(), join(a, "manager"));

  const auto dev_view = usage(developer, a, "range=last_month");
  std::vector<std::string> micros;
  find_micros(dev_view, "", micros);
  EXPECT_TRUE(micros.empty()) << "a direct developer sees " << micros.front() << " in " << json::serialize(dev_view);
  // Counts, quantities and the days are still there.
  EXPECT_EQ(dev_view.at("daily").as_array().size(), 30u);
  ASSERT_EQ(dev_view.at("by_event_type").as_array().size(), 1u);
  EXPECT_EQ(json_int(dev_view.at("by_event_type").as_array()[0], {"quantity"}), 3);
  EXPECT_EQ(json_int(dev_view.at("by_event_type").as_array()[0], {"count"}), 1);

  const auto mgr_view = sub_usage(manager, a, "range=last_month");
  micros.clear();
  find_micros(mgr_view, "", micros);
  EXPECT_TRUE(micros.empty()) << "a direct manager sees " << micros.front() << " in " << json::serialize(mgr_view);
  ASSERT_EQ(mgr_view.at("organizations").as_array().size(), 1u);
  EXPECT_EQ(json_str(mgr_view.at("organizations").as_array()[0], {"org_id"}), a1);

  // The owner reaches A as admin of R: dollars.
  EXPECT_EQ(json_int(usage(a, "range=last_month"), {"total_spend_micros"}), 100'000);
  EXPECT_EQ(json_int(sub_usage(a, "range=last_month"), {"total_spend_micros"}), 330'000);
}

// --- durability and agreement with billing ------------------------------------------------------------

TEST_F(Usage, ReportsSurviveKill9AndAgreeWithTheCycleSpend) {
  run_to_january();  // its last step is a charge: kill -9 follows its 200 at once
  const std::string q = "from=" + nov(28) + "&to=" + jan(3);
  const auto before_a = usage(a, q);
  const auto before_r = usage(r, q);
  const auto before_subs = sub_usage(r, q);
  restart_after_kill9();
  EXPECT_EQ(usage(a, q), before_a);
  EXPECT_EQ(usage(r, q), before_r);
  EXPECT_EQ(sub_usage(r, q), before_subs);
  EXPECT_EQ(json_int(usage(a, q), {"total_spend_micros"}), 175'000);
  EXPECT_EQ(json_int(sub_usage(r, q), {"total_spend_micros"}), 612'000);

  // The cycle spend of an org whose charges all originate there (B pays for itself, has no sub-orgs)
  // is its this_month usage.
  const auto spend = [&](const std::string& org, const std::string& query) {
    return json_int(usage(org, query), {"total_spend_micros"});
  };
  EXPECT_EQ(cycle_spend(b), 7'000);
  EXPECT_EQ(spend(b, "range=this_month"), cycle_spend(b));
  // A consolidated org's cycle spend is its own usage plus its consolidated descendants': A = A + A1,
  // R = R + A + A1 (not B, which pays for itself).
  EXPECT_EQ(cycle_spend(a), 5'000);
  EXPECT_EQ(cycle_spend(a), spend(a, "range=this_month") + spend(a1, "range=this_month"));
  EXPECT_EQ(cycle_spend(r), 15'000);
  EXPECT_EQ(cycle_spend(r), spend(r, "range=this_month") + spend(a, "range=this_month") + spend(a1, "range=this_month"));
}

TEST_F(Usage, InDecemberTheLeafsCycleSpendIsItsThisMonthUsage) {
  run_to_december();
  EXPECT_EQ(cycle_spend(a1), 40'000);
  EXPECT_EQ(json_int(usage(a1, "range=this_month"), {"total_spend_micros"}), cycle_spend(a1));
  EXPECT_EQ(cycle_spend(r), 110'000);  // A 70,000 + A1 40,000
  EXPECT_EQ(json_int(usage(r, "range=this_month"), {"total_spend_micros"}) +
                json_int(sub_usage(r, "range=this_month"), {"total_spend_micros"}) -
                json_int(usage(b, "range=this_month"), {"total_spend_micros"}),
            cycle_spend(r));
}

TEST_F(Usage, AChargeIsInTheReportAsSoonAsItIsAccepted) {
  run_to_december();
  const auto before = json_int(usage(b, "range=this_month"), {"total_spend_micros"});
  charge(b, "knowledge.query", 2, 1'234);
  const auto after = usage(b, "range=this_month");
  EXPECT_EQ(json_int(after, {"total_spend_micros"}), before + 1'234);
  EXPECT_EQ(by_type(after).at("knowledge.query"), (TypeRow{1, 2, 1'234}));
}

TEST_F(Usage, RefusedAndRepeatedEventsAddNothing) {
  run_to_december();
  const auto before = usage(b, "range=this_month");
  // B pays for itself and holds 2,000,000 + 1,000,000 - 60,000: a bigger event is refused (402).
  auto refused = admin().post("/v1/orgs/" + b + "/usage",
                              {{"id", "too-big"}, {"type", "inbox.message"}, {"quantity", 1}, {"cost_micros", 50'000'000}});
  EXPECT_EQ(refused.status, 402u) << refused.body;
  // An id already accepted returns the first answer and counts nothing more.
  const json::value again = {{"id", "once"}, {"type", "inbox.message"}, {"quantity", 3}, {"cost_micros", 1'000}};
  ASSERT_EQ(admin().post("/v1/orgs/" + b + "/usage", again).status, 200u);
  ASSERT_EQ(admin().post("/v1/orgs/" + b + "/usage", again).status, 200u);
  const auto after = usage(b, "range=this_month");
  EXPECT_EQ(json_int(after, {"total_spend_micros"}), json_int(before, {"total_spend_micros"}) + 1'000);
  EXPECT_EQ(by_type(after).at("inbox.message"), (TypeRow{2, 4 + 3, 60'000 + 1'000}));
}

// Billing reads show the new cycle (and its free credits) before any write rolls the org over ("Reads show
// the current cycle even before any write rolls it over"); the usage report is a read too, so this
// month's credits include the allowance granted on its first day, whether or not anything has made the
// org journal its rollover yet (a charge does; so does GET …/billing/payments).
TEST_F(Usage, ThisMonthsFreeCreditsCountBeforeTheOrgIsWrittenTo) {
  grant(op(), r, 1'000'000);
  clock(rfc3339(Y, 12, 5, 12, 0, 0));  // nothing touches R in December
  auto billing = op().get("/v1/orgs/" + r + "/billing");
  ASSERT_EQ(billing.status, 200u) << billing.body;
  ASSERT_EQ(json_int(billing.json(), {"available_balance_micros"}), free_credits + 1'000'000 + free_credits)
      << "the billing read shows December's allowance";
  EXPECT_EQ(json_int(usage(r, "range=this_month"), {"total_credits_micros"}), free_credits);
  EXPECT_EQ(json_int(usage(r, "range=last_month"), {"total_credits_micros"}), free_credits + 1'000'000);
}

// A report is one reading of the buckets: its total is the sum of its days and of its types even while
// charges are being accepted (each report reads from one consistent snapshot, never half of a commit).
TEST_F(Usage, AReportReadDuringChargesAgreesWithItself) {
  grant(op(), r, 1'000'000'000);
  std::atomic<bool> stop{false};
  std::atomic<int> accepted{0};
  // Two connections sending batches back to back, so that commits land while reports are being read.
  const auto send = [&](int thread) {
    Client as_op(port());
    for (int batch = 0; !stop.load() && batch < 100'000; ++batch) {
      json::array events;
      for (int i = 0; i < 20; ++i) {
        events.push_back({{"id", "c-" + std::to_string(thread) + "-" + std::to_string(batch) + "-" + std::to_string(i)},
                          {"org_id", i % 2 ? a : a1},
                          {"type", i % 3 ? "assistants.reply" : "inbox.message"},
                          {"quantity", 1},
                          {"cost_micros", 10 + i}});
      }
      auto res = as_op.post("/v1/usage:batch", {{"events", events}});
      if (res.status != 200u) {
        ADD_FAILURE() << res.body;
        return;
      }
      accepted.fetch_add(20);
    }
  };
  std::thread writer1(send, 1), writer2(send, 2);
  int torn = 0, reads = 0;
  std::string example;
  const std::vector<std::string> paths = {"/v1/orgs/" + a + "/usage?range=this_month",
                                          "/v1/orgs/" + r + "/usage/sub-orgs?range=this_month"};
  while (reads < 12000) {
    for (const std::string& path : paths) {
      auto res = admin().get(path);
      if (res.status != 200u) {  // not ASSERT: the writers must be joined first
        ADD_FAILURE() << path << ": " << res.body;
        reads = 1'000'000;
        break;
      }
      const auto v = res.json();
      ++reads;
      std::int64_t days = 0, types = 0;
      for (const auto& [d, spend] : spend_days(v)) days += spend;
      for (const auto& [t, row] : by_type(v)) types += row.spend;
      const auto total = json_int(v, {"total_spend_micros"});
      if (total != days || total != types) {
        ++torn;
        if (example.empty()) {
          example = path + ": total " + std::to_string(total) + ", days " + std::to_string(days) + ", types " +
                    std::to_string(types);
        }
      }
    }
  }
  stop = true;
  writer1.join();
  writer2.join();
  EXPECT_GT(accepted.load(), 0);
  EXPECT_EQ(torn, 0) << torn << " of " << reads << " reports disagree with themselves, e.g. " << example;
}

}  // namespace
}  // namespace canopy::test
