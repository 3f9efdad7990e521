#include "actors/directory.hpp"

#include <algorithm>
#include <mutex>
#include <utility>

#include "actors/org_actor.hpp"
#include "actors/services.hpp"
#include "config/limits.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"

namespace canopy::actors {

using namespace canopy::domain;

namespace {
std::string hash_key(const TokenHash& hash) { return std::string(hash.begin(), hash.end()); }
}  // namespace

std::vector<const OrgState*> raw_lineage(const std::vector<OrgPtr>& lineage) {
  std::vector<const OrgState*> out;
  out.reserve(lineage.size());
  for (const auto& o : lineage) out.push_back(o.get());
  return out;
}

persistence::Status Directory::load(const persistence::Store& store) {
  using persistence::Table;
  persistence::Status bad;
  auto s = store.scan(Table::orgs, {}, {}, [&](std::string_view, std::string_view value) {
    auto org = persistence::decode_org(value);
    if (!org) {
      bad = {persistence::Status::Code::corruption, "an org does not decode"};
      return false;
    }
    publish(std::make_shared<const OrgState>(std::move(*org)));
    return true;
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  s = store.scan(Table::users, {}, {}, [&](std::string_view, std::string_view value) {
    auto user = persistence::decode_user(value);
    if (!user) {
      bad = {persistence::Status::Code::corruption, "a user does not decode"};
      return false;
    }
    std::unique_lock lock(mutex_);
    users_[user->id] = UserInfo{user->id, user->email, user->name, user->created_at, OrgId::none};
    emails_[user->email] = user->id;
    return true;
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  s = store.scan(Table::tokens, {}, {}, [&](std::string_view key, std::string_view value) {
    const auto row = persistence::decode_token_row(value);
    if (!row) {
      bad = {persistence::Status::Code::corruption, "a token row does not decode"};
      return false;
    }
    std::unique_lock lock(mutex_);
    switch (row->kind) {
      case persistence::TokenKind::user:
        tokens_[std::string(key)] = Principal{Principal::Kind::user, UserId{row->owner}, OrgId::none, KeyId::none};
        break;
      case persistence::TokenKind::api_key:
        tokens_[std::string(key)] = Principal{Principal::Kind::api_key, UserId::none, OrgId{row->owner}, KeyId{row->item}};
        break;
      case persistence::TokenKind::invitation:
        invitations_[std::string(key)] = InvitationRef{OrgId{row->owner}, InvitationId{row->item}, row->used};
        break;
    }
    return true;
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  // Which org gets each owner's free allowance.
  std::unique_lock lock(mutex_);
  for (auto& [id, entry] : orgs_) {
    const OrgPtr org = entry.snapshot();
    if (!org->free_credits_recipient) continue;
    for (const auto& m : org->members) {
      if (m.role == Role::admin) {
        if (auto u = users_.find(m.user); u != users_.end() && u->second.free_credits_org == OrgId::none) {
          u->second.free_credits_org = id;
        }
      }
    }
  }
  return bad;
}

const Directory::Entry& Directory::known(OrgId id) const {
  const Entry* entry = orgs_.find(id);
  CANOPY_ASSERT(entry != nullptr);
  return *entry;
}

Directory::Entry& Directory::known(OrgId id) { return const_cast<Entry&>(std::as_const(*this).known(id)); }

OrgPtr Directory::org(OrgId id) const {
  std::shared_lock lock(mutex_);
  const Entry* entry = orgs_.find(id);
  return entry ? entry->snapshot() : nullptr;
}

std::vector<OrgPtr> Directory::lineage_locked(OrgId id) const {
  std::vector<OrgPtr> out;
  while (id != OrgId::none && out.size() <= limits::chain_orgs_max) {
    const Entry* entry = orgs_.find(id);
    if (!entry) return {};
    out.push_back(entry->snapshot());
    id = out.back()->parent;
  }
  return out;
}

std::vector<OrgPtr> Directory::lineage(OrgId id) const {
  std::shared_lock lock(mutex_);
  return lineage_locked(id);
}

std::vector<OrgPtr> Directory::children(OrgId id) const {
  std::shared_lock lock(mutex_);
  std::vector<OrgPtr> out;
  const Entry* entry = orgs_.find(id);
  if (!entry) return out;
  out.reserve(entry->children.size());
  for (const auto child : entry->children) out.push_back(known(child).snapshot());
  return out;
}

std::vector<OrgPtr> Directory::descendants(OrgId id) const {
  std::shared_lock lock(mutex_);
  std::vector<OrgPtr> out;
  std::vector<OrgId> frontier{id};
  for (std::size_t i = 0; i < frontier.size(); ++i) {
    const Entry* entry = orgs_.find(frontier[i]);
    if (!entry) continue;
    for (const auto child : entry->children) {
      frontier.push_back(child);
      out.push_back(known(child).snapshot());
    }
  }
  return out;
}

void Directory::index_members_locked(const OrgState* before, const OrgState& after) {
  if (before) {
    for (const auto& m : before->members) {
      if (!after.find_member(m.user)) memberships_[m.user].erase(after.id);
    }
  }
  for (const auto& m : after.members) memberships_[m.user].insert(after.id);
}

void Directory::publish(OrgPtr org) {
  const OrgId id = org->id;
  OrgPtr replaced;
  {
    std::unique_lock lock(mutex_);
    replaced = publish_locked(orgs_[id], std::move(org));
  }
  tell_listener(id);
}

void Directory::publish(Entry& entry, OrgPtr org) {
  const OrgId id = org->id;
  OrgPtr replaced;
  // Only the org's actor publishes through its entry, so the snapshot stays `before` until it does.
  const OrgPtr before = entry.snapshot();
  CANOPY_ASSERT(before && before->id == id);  // an actor publishes its own org only
  if (before->parent == org->parent && before->members == org->members) {
    replaced = entry.org.exchange(std::move(org), std::memory_order_acq_rel);  // nothing indexed changes
    CANOPY_ASSERT(replaced == before);  // no second writer slipped in between: none may
  } else {
    std::unique_lock lock(mutex_);
    replaced = publish_locked(entry, std::move(org));
  }
  tell_listener(id);
}  // `replaced` (often the last reference to the old snapshot) is freed here, outside the lock

void Directory::tell_listener(OrgId id) const {
  // Called under the shared lock, so set_change_listener() (the server unhooking at shutdown) waits for
  // calls in progress. The listener (the stream hub) takes only its own lock and never calls back here.
  std::shared_lock lock(mutex_);
  if (change_listener_) change_listener_(id);
}

void Directory::set_change_listener(std::function<void(OrgId)> listener) {
  std::unique_lock lock(mutex_);
  change_listener_ = std::move(listener);
}

OrgPtr Directory::publish_locked(Entry& entry, OrgPtr org) {
  const OrgPtr before_ptr = entry.snapshot();
  const OrgState* before = before_ptr.get();  // null: the org's first snapshot
  const OrgId old_parent = before ? before->parent : OrgId::none;
  // Most publishes are charges, which leave the members as they were: no index work for them.
  if (!before || before->members != org->members) index_members_locked(before, *org);
  if (!before || old_parent != org->parent) {
    if (old_parent != OrgId::none) {
      auto& siblings = orgs_[old_parent].children;
      siblings.erase(std::remove(siblings.begin(), siblings.end(), org->id), siblings.end());
    }
    if (org->parent != OrgId::none) orgs_[org->parent].children.push_back(org->id);
  }
  return entry.org.exchange(std::move(org), std::memory_order_acq_rel);
}

caf::actor Directory::actor_of(OrgId id) {
  {
    std::shared_lock lock(mutex_);
    const Entry* entry = orgs_.find(id);
    if (!entry || !entry->snapshot()) return nullptr;
    if (entry->actor) return entry->actor;
  }
  std::unique_lock lock(mutex_);
  Entry& entry = known(id);  // it was there under the shared lock, and entries are never removed
  if (!entry.actor) entry.actor = spawn_org_actor(*services_, entry);
  return entry.actor;
}

void Directory::stop_actors() {
  std::unique_lock lock(mutex_);
  for (auto& [id, entry] : orgs_) {
    if (entry.actor) {
      caf::anon_send_exit(entry.actor, caf::exit_reason::user_shutdown);
      entry.actor = nullptr;
    }
  }
}

std::optional<UserInfo> Directory::user(UserId id) const {
  std::shared_lock lock(mutex_);
  auto it = users_.find(id);
  return it == users_.end() ? std::nullopt : std::optional<UserInfo>(it->second);
}

std::optional<UserId> Directory::user_by_email(std::string_view email) const {
  std::shared_lock lock(mutex_);
  auto it = emails_.find(email);
  return it == emails_.end() ? std::nullopt : std::optional<UserId>(it->second);
}

void Directory::publish_user(const UserInfo& user, const TokenHash& token_hash) {
  std::unique_lock lock(mutex_);
  users_[user.id] = user;
  emails_[user.email] = user.id;
  tokens_[hash_key(token_hash)] = Principal{Principal::Kind::user, user.id, OrgId::none, KeyId::none};
}

void Directory::publish_api_key(const TokenHash& token_hash, OrgId org, KeyId key) {
  std::unique_lock lock(mutex_);
  tokens_[hash_key(token_hash)] = Principal{Principal::Kind::api_key, UserId::none, org, key};
}

void Directory::forget_token(const TokenHash& token_hash) {
  std::unique_lock lock(mutex_);
  tokens_.erase(hash_key(token_hash));
}

std::optional<InvitationRef> Directory::invitation(const TokenHash& token_hash) const {
  std::shared_lock lock(mutex_);
  auto it = invitations_.find(hash_key(token_hash));
  return it == invitations_.end() ? std::nullopt : std::optional<InvitationRef>(it->second);
}

void Directory::publish_invitation(const TokenHash& token_hash, const InvitationRef& ref) {
  std::unique_lock lock(mutex_);
  invitations_[hash_key(token_hash)] = ref;
}

void Directory::forget_invitation(const TokenHash& token_hash) {
  std::unique_lock lock(mutex_);
  invitations_.erase(hash_key(token_hash));
}

void Directory::set_free_credits_org(UserId user, OrgId org) {
  std::unique_lock lock(mutex_);
  if (auto it = users_.find(user); it != users_.end()) it->second.free_credits_org = org;
}

std::vector<OrgId> Directory::memberships(UserId user) const {
  std::shared_lock lock(mutex_);
  auto it = memberships_.find(user);
  if (it == memberships_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::optional<Principal> Directory::principal_for(const TokenHash& token_hash) const {
  if (hashes_equal(token_hash, operator_hash_)) {
    return Principal{Principal::Kind::operator_token, UserId::none, OrgId::none, KeyId::none};
  }
  std::shared_lock lock(mutex_);
  auto it = tokens_.find(hash_key(token_hash));
  return it == tokens_.end() ? std::nullopt : std::optional<Principal>(it->second);
}

Access Directory::access(const Principal& principal, const std::vector<OrgPtr>& lineage) const {
  Access access;
  if (lineage.empty()) return access;
  switch (principal.kind) {
    case Principal::Kind::operator_token: access.is_operator = true; break;
    case Principal::Kind::api_key:
      access.api_key = std::any_of(lineage.begin(), lineage.end(), [&](const OrgPtr& o) { return o->id == principal.key_org; });
      break;
    case Principal::Kind::user:
      if (const auto* m = lineage[0]->find_member(principal.user)) access.direct_role = m->role;
      for (std::size_t i = 1; i < lineage.size(); ++i) {
        const auto* m = lineage[i]->find_member(principal.user);
        if (m && m->role == Role::admin) access.ancestor_admin = true;
      }
      break;
  }
  return access;
}

std::vector<OrgPtr> Directory::paused_before(Cycle cycle) const {
  std::shared_lock lock(mutex_);
  std::vector<OrgPtr> out;
  for (const auto& [id, entry] : orgs_) {
    OrgPtr org = entry.snapshot();
    if (org && org->cycle < cycle && org->paused()) out.push_back(std::move(org));
  }
  return out;
}

std::size_t Directory::org_count() const {
  std::shared_lock lock(mutex_);
  return orgs_.size();
}

}  // namespace canopy::actors
