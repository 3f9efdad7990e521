// The directory: which orgs and users exist, how they nest, who is a member where, and the actor of
// each org (spawned on first use).
//
// It is a read model. Each org actor owns its org and publishes an immutable snapshot here after every
// committed change (before it replies, so a client always reads its own writes); the registry does the
// same for users. The gateway reads snapshots to authenticate, authorize and shape responses without a
// round trip through the actors. Tenant state is never decided here: a shared lock guards only the
// maps, and no decision about money or membership is taken under it.
//
// An org's snapshot is an atomic pointer in its entry. A snapshot that changes nothing the maps index
// (an org's parent, its members), which is every charge's, is swapped in without the lock: the three
// publishes of a charge's chain never wait for, nor hold up, the gateway's reads of lineages. Readers
// still take the shared lock to walk the maps; a parent or membership change takes it exclusively.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <caf/all.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "actors/org_map.hpp"
#include "domain/access.hpp"
#include "domain/keyed_hash.hpp"
#include "domain/org.hpp"
#include "persistence/store.hpp"

namespace canopy::actors {

class Services;
using OrgPtr = std::shared_ptr<const domain::OrgState>;

// The same lineage as plain pointers, as the domain's rules take it (domain::Lineage); valid while
// `lineage` holds the snapshots.
std::vector<const domain::OrgState*> raw_lineage(const std::vector<OrgPtr>& lineage);

struct UserInfo {
  domain::UserId id = domain::UserId::none;
  std::string email;
  std::string name;
  domain::Timestamp created_at = 0;
  domain::OrgId free_credits_org = domain::OrgId::none;
};

// Who is calling.
struct Principal {
  enum class Kind : std::uint8_t { operator_token, user, api_key } kind = Kind::user;
  domain::UserId user = domain::UserId::none;
  domain::OrgId key_org = domain::OrgId::none;  // api_key: the org it belongs to
  domain::KeyId key = domain::KeyId::none;      // api_key: which key
};

// Where an invitation link's token leads. Used ones stay known, so a second use is told 410, not 404.
struct InvitationRef {
  domain::OrgId org = domain::OrgId::none;
  domain::InvitationId id = domain::InvitationId::none;
  bool used = false;
};

class Directory {
 public:
  // Loads every org, user and token from the store (after recovery).
  persistence::Status load(const persistence::Store& store);
  void attach(Services* services) { services_ = services; }

  OrgPtr org(domain::OrgId id) const;
  // The org, then each ancestor up to its root; empty if the org does not exist.
  std::vector<OrgPtr> lineage(domain::OrgId id) const;
  std::vector<OrgPtr> children(domain::OrgId id) const;
  // Every org below `id` (not itself), parents before children.
  std::vector<OrgPtr> descendants(domain::OrgId id) const;

  // Publishes a new snapshot of an org (called by its actor, or the registry for a new root), then
  // tells the change listener.
  void publish(OrgPtr org);
  // An org's place in the directory. Its actor is handed it at spawn and publishes through it without
  // the map's probe (a cold one, under the lock, for each org of every charge's chain). Entries are
  // never removed, and OrgMap never moves one, so it lives as long as the directory.
  struct Entry;
  // REQUIRES: `entry` is `org`'s (org->id is the entry's org).
  void publish(Entry& entry, OrgPtr org);
  // Who hears of every published change (the WebSocket hub); set before serving, cleared after.
  void set_change_listener(std::function<void(domain::OrgId)> listener);
  // The org's actor; spawns it on first use (handing it its entry). Null if the org does not exist.
  caf::actor actor_of(domain::OrgId id);
  // Sends every org actor an exit message (shutdown).
  void stop_actors();

  std::optional<UserInfo> user(domain::UserId id) const;
  std::optional<domain::UserId> user_by_email(std::string_view email) const;
  void publish_user(const UserInfo& user, const domain::TokenHash& token_hash);
  void set_free_credits_org(domain::UserId user, domain::OrgId org);
  // Orgs where the user holds a direct membership.
  std::vector<domain::OrgId> memberships(domain::UserId user) const;

  std::optional<Principal> principal_for(const domain::TokenHash& token_hash) const;
  // Org API keys: published by the org actor once created, forgotten once revoked.
  void publish_api_key(const domain::TokenHash& token_hash, domain::OrgId org, domain::KeyId key);
  void forget_token(const domain::TokenHash& token_hash);

  std::optional<InvitationRef> invitation(const domain::TokenHash& token_hash) const;
  void publish_invitation(const domain::TokenHash& token_hash, const InvitationRef& ref);
  void forget_invitation(const domain::TokenHash& token_hash);
  void set_operator_token_hash(const domain::TokenHash& hash) { operator_hash_ = hash; }
  const domain::TokenHash& operator_token_hash() const { return operator_hash_; }

  // How `principal` reaches `org`; not visible() means 404.
  domain::Access access(const Principal& principal, const std::vector<OrgPtr>& lineage) const;

  std::size_t org_count() const;
  // Orgs paused in a cycle before `cycle` (their rollover to it will resume them).
  std::vector<OrgPtr> paused_before(domain::Cycle cycle) const;

 public:
  struct Entry {
    // Swapped by its actor; read with snapshot(). (GCC 12's atomic<shared_ptr> guards the pointer
    // with a spin bit whose reader unlock is a relaxed RMW: a full barrier on x86-64, where this runs;
    // ThreadSanitizer reports it as a race, google/sanitizers#1558.)
    std::atomic<OrgPtr> org;
    std::vector<domain::OrgId> children;
    caf::actor actor;

    OrgPtr snapshot() const { return org.load(std::memory_order_acquire); }
  };

 private:
  std::vector<OrgPtr> lineage_locked(domain::OrgId id) const;
  // The entry of an org known to be here (a child listed under its parent, an org seen a moment ago).
  Entry& known(domain::OrgId id);
  const Entry& known(domain::OrgId id) const;
  // Sets `entry`'s snapshot and keeps the indexes in step; returns the snapshot it replaces (for the
  // caller to release after unlocking).
  OrgPtr publish_locked(Entry& entry, OrgPtr org);
  void tell_listener(domain::OrgId id) const;
  void index_members_locked(const domain::OrgState* before, const domain::OrgState& after);

  mutable std::shared_mutex mutex_;
  OrgMap<Entry> orgs_;
  std::unordered_map<domain::UserId, UserInfo> users_;
  std::unordered_map<std::string, domain::UserId, domain::KeyedHash, std::equal_to<>> emails_;  // chosen by clients
  std::unordered_map<domain::UserId, std::unordered_set<domain::OrgId>> memberships_;
  std::unordered_map<std::string, Principal> tokens_;  // key: the 32 hash bytes
  std::unordered_map<std::string, InvitationRef> invitations_;  // key: the 32 hash bytes
  domain::TokenHash operator_hash_{};
  Services* services_ = nullptr;
  std::function<void(domain::OrgId)> change_listener_;
};

}  // namespace canopy::actors
