// How each journal record changes an org. The only code that mutates OrgState after creation.
//
// REQUIRES: `org` is one of orgs_touched(record) (or the org being created, for OrgCreated).
// Deterministic and total: the same record on the same state gives the same state, in the actor's
// memory, in the writer's materialized copy and in `canopy check`'s replay.
#pragma once

#include "domain/records.hpp"

namespace canopy::domain {

void apply(OrgState& org, const Record& record);
// What apply() would abort on for this org and record (a balance going below zero, an overflow), or
// nullopt. The audit asks first, so a corrupt journal is reported instead of stopping `canopy check`.
std::optional<std::string> apply_refusal(const OrgState& org, const Record& record);
void apply_rollover(OrgState& org, const CycleRolled& record);
OrgState make_org(const OrgCreated& record);

}  // namespace canopy::domain
