// Reads usage reports out of the buckets (domain/usage.hpp). Read-only; any thread.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "domain/ids.hpp"
#include "domain/usage.hpp"
#include "persistence/store.hpp"

namespace canopy::persistence {

struct TypeUsage {
  std::uint64_t count = 0;
  std::uint64_t quantity = 0;
  domain::Micros spend_micros = 0;
};

struct UsageReport {
  domain::DayRange range;
  domain::Micros total_spend_micros = 0;
  domain::Micros total_credits_micros = 0;
  std::vector<domain::Micros> daily;          // spend per day, range.days() entries, zeros included
  std::map<std::string, TypeUsage> by_type;   // by event type, in name order
};

// The report of one org over `range`, added into `report` (so reports of many orgs sum). REQUIRES:
// report.range == range and report.daily.size() == range.days(). Read through one snapshot, so a
// report (or many, in one Store::read) is consistent with itself.
Status add_usage(const Snapshot& snapshot, domain::OrgId org, domain::DayRange range, UsageReport& report);
// The same in a snapshot of its own.
Status add_usage(const Store& store, domain::OrgId org, domain::DayRange range, UsageReport& report);

// An empty report for `range`.
UsageReport empty_report(domain::DayRange range);

}  // namespace canopy::persistence
