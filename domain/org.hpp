// The durable state of one organization, and the read-side views derived from it.
//
// Owned by exactly one org actor in memory (actors/org_actor) and by the persistence writer on disk
// (persistence/materializer). Both change it only through domain::apply (apply.hpp), so memory and disk
// are the same fold over the journal.
//
// Invariants (checked by check_invariants, on every write to LMDB and every read back):
//   balance_micros >= 0; cycle_spend_micros >= 0;
//   a root has parent == none, depth == 0 and consolidated == false;
//   members are sorted by user id, unique.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "domain/alerts.hpp"
#include "domain/catalog.hpp"
#include "domain/errors.hpp"
#include "domain/ids.hpp"
#include "domain/money.hpp"
#include "domain/time.hpp"

namespace canopy::domain {

struct Member {
  UserId user = UserId::none;
  Role role = Role::agent;
  friend bool operator==(const Member&, const Member&) = default;
};

struct PaymentMethod {
  std::string brand;
  std::string last4;
  std::uint8_t exp_month = 0;
  std::uint16_t exp_year = 0;
  friend bool operator==(const PaymentMethod&, const PaymentMethod&) = default;
};

struct AutoRecharge {
  bool enabled = false;
  Micros threshold_micros = 0;
  Micros amount_micros = 0;
  friend bool operator==(const AutoRecharge&, const AutoRecharge&) = default;
};

// The org's own branding, used on its emails and portals; never inherited from the parent. Empty
// strings are unset. (The display name is OrgState::name.)
struct Customization {
  std::string logo_url;
  std::string contact_email;
  std::string address;
  std::string terms_of_service_url;
  std::string privacy_policy_url;
  friend bool operator==(const Customization&, const Customization&) = default;
};

// The org's custom domain; invitation links use it once verified.
struct CustomDomain {
  std::string hostname;
  bool verified = false;
  friend bool operator==(const CustomDomain&, const CustomDomain&) = default;
};

// An org API key (`ck_…`): the secret is shown once, only its hash is kept.
struct ApiKey {
  KeyId id = KeyId::none;
  std::string name;
  std::string hint;  // the secret's last 4 characters, so people can tell keys apart
  UserId created_by = UserId::none;  // none when the operator made it
  Timestamp created_at = 0;
  TokenHash token_hash{};
  friend bool operator==(const ApiKey&, const ApiKey&) = default;
};

// A pending invitation: a single-use link for `email` to join with `role` until `expires_at`.
struct Invitation {
  InvitationId id = InvitationId::none;
  std::string email;  // lower-cased
  Role role = Role::agent;
  UserId invited_by = UserId::none;  // none when the operator invited
  Timestamp created_at = 0;
  Timestamp expires_at = 0;
  TokenHash token_hash{};
  friend bool operator==(const Invitation&, const Invitation&) = default;
};

struct OrgState {
  OrgId id = OrgId::none;
  OrgId parent = OrgId::none;
  std::string name;
  Timestamp created_at = 0;
  std::uint8_t depth = 0;  // 0 for a root

  // Billing configuration.
  bool consolidated = false;                    // charged to the parent's pool (sub-orgs only)
  std::optional<Plan> subscription;             // this org's own active subscription, if any
  std::optional<Micros> monthly_limit_micros;   // null: no limit
  std::optional<PaymentMethod> payment_method;
  AutoRecharge auto_recharge;
  bool free_credits_recipient = false;          // the one org per owning user that gets the allowance

  // Money. Changed only by journal records.
  Micros balance_micros = 0;
  Cycle cycle = 0;
  Micros cycle_spend_micros = 0;
  bool paused_flag = false;  // an event was refused at this org's limit in this cycle

  // Tenant settings.
  ModuleSet modules_enabled = all_modules;
  bool show_credits_balance = false;

  Customization customization;
  std::optional<CustomDomain> custom_domain;

  std::vector<Member> members;          // sorted by user
  std::vector<ApiKey> api_keys;         // oldest first
  std::vector<Invitation> invitations;  // pending (maybe expired), oldest first

  AlertConfig alerts;
  std::vector<Webhook> webhooks;  // oldest first

  friend bool operator==(const OrgState&, const OrgState&) = default;

  bool is_root() const { return parent == OrgId::none; }
  // The org pays for itself: a root, or a sub-org with consolidated billing off.
  bool pays_for_itself() const { return is_root() || !consolidated; }
  // Paused: the limit was hit this cycle (spend reached it, or an event was refused at it).
  bool paused() const {
    return paused_flag || (monthly_limit_micros && cycle_spend_micros >= *monthly_limit_micros);
  }
  bool redundant_subscription() const { return !pays_for_itself() && subscription.has_value(); }
  const Member* find_member(UserId user) const;
  const Invitation* find_invitation(const TokenHash& token_hash) const;
  std::size_t admin_count() const;
};

// Assertion helper for the money paths: returns a description of the first broken invariant.
std::optional<std::string> check_invariants(const OrgState& org);

// Aborts the process (in every build type) with `what` if the condition is false. Used where a broken
// invariant means money could be created or destroyed: better to stop than to go on.
[[noreturn]] void invariant_failed(const char* what, const char* file, int line);
#define CANOPY_ASSERT(cond) \
  ((cond) ? static_cast<void>(0) : ::canopy::domain::invariant_failed(#cond, __FILE__, __LINE__))

// The rollover that brings `org` into `cycle` (REQUIRES cycle > org.cycle): spend back to 0, the pause
// lifted, and for the free-credit recipient one allowance per cycle crossed.
struct CycleRolled;
CycleRolled rollover_to(const OrgState& org, Cycle cycle, Micros free_credits_micros);

// The org as it reads at `now`: a cycle that has ended shows as the new one (spend 0, not paused,
// the free allowance added), even before any write has rolled it over. `free_credits_micros` is the
// configured allowance.
OrgState view_at(const OrgState& org, Timestamp now, Micros free_credits_micros);

}  // namespace canopy::domain
