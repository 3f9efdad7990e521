// How orgs, billing, payments and the switcher read on the wire.
//
// The show-credits rule lives here and only here: when an org has "show credits balance" on, a
// caller whose access comes only from a membership in that org itself gets no dollar amount (no
// `*_micros` field at all), only percentages. Ancestor admins and the operator still see dollars.
#pragma once

#include "actors/directory.hpp"
#include "actors/services.hpp"
#include "net/json_out.hpp"
#include "persistence/codec.hpp"

namespace canopy::net {

bool hides_money(const domain::OrgState& org, const domain::Access& access);

// GET /v1/orgs/{id}. `hide_from_above`: the caller is under the show-credits rule on an ancestor the
// org is shown through (a sub-org's row or creation seen from its parent): its money is the
// ancestor's money too, so it is hidden as well.
void write_org(JsonWriter& w, const actors::Services& services, const std::vector<actors::OrgPtr>& lineage,
               const domain::Access& access, domain::Timestamp now, bool hide_from_above = false);
// GET /v1/orgs/{id}/billing
void write_billing(JsonWriter& w, const actors::Services& services, const std::vector<actors::OrgPtr>& lineage,
                   const domain::Access& access, domain::Timestamp now);
// GET /v1/orgs/{id}/indicator: what the org's sidebar shows its members. Under show-credits,
// {kind: "usage", percent} (of the monthly limit used this cycle, one decimal; null while no limit is
// set); otherwise {kind: "balance", balance_micros}, the org's available balance, as it reads at `now`.
void write_indicator(JsonWriter& w, const actors::Services& services, const domain::OrgState& stored,
                     domain::Timestamp now);
// One row of GET /v1/orgs/{id}/sub-orgs
void write_sub_org_row(JsonWriter& w, const actors::Services& services, const std::vector<actors::OrgPtr>& lineage,
                       const domain::Access& access, domain::Timestamp now, bool hide_from_above = false);
// `hide`: the show-credits rule (no amount).
void write_payment(JsonWriter& w, const persistence::PaymentRow& payment, bool hide);
// GET /v1/me
void write_me(JsonWriter& w, const actors::Services& services, const actors::UserInfo& user);

// A WebSocket balance event: {type: "balance", org_id, seq, available_balance_micros,
// cycle_spend_micros, monthly_spending_limit_micros, paused, percent}; `org` as it reads now
// (view_at); dollar fields omitted when `hide` (hides_money).
void write_balance_event(JsonWriter& w, const domain::OrgState& org, bool hide, std::uint64_t seq);

// --- alerts and webhooks (views_alerts.cpp) ----------------------------------------------------------
// An alert as webhooks receive it: {id, type, org_id, created_at, data}; money in data omitted when
// `hide` (only ever for a direct member's stream under show-credits).
void write_alert(JsonWriter& w, const domain::Alert& alert, bool hide);
// GET …/alerts
void write_alert_config(JsonWriter& w, const domain::AlertConfig& config);
// A webhook, without its secret.
void write_webhook(JsonWriter& w, const domain::Webhook& webhook);
// One delivery attempt; `seq` identifies it (dlv_…).
void write_delivery(JsonWriter& w, std::uint64_t seq, const persistence::DeliveryRow& row);

// --- members, invitations, keys, customization (views_members.cpp) ---------------------------------
// A row of GET /v1/orgs/{id}/members for a member: {user_id, name, email, role, status: "active"}.
void write_member_row(JsonWriter& w, const actors::Services& services, const domain::Member& member);
// A row for a pending invitation: status "invited", user_id when the email already has a user.
void write_invited_row(JsonWriter& w, const actors::Services& services, const domain::Invitation& invitation);
// An API key without its secret.
void write_api_key(JsonWriter& w, const domain::ApiKey& key);
// GET /v1/orgs/{id}/customization
void write_customization(JsonWriter& w, const domain::OrgState& org);

}  // namespace canopy::net
