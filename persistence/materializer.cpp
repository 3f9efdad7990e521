#include "persistence/materializer.hpp"

#include <algorithm>

#include "config/limits.hpp"
#include "domain/apply.hpp"
#include "persistence/codec.hpp"
#include "persistence/forget_clean.hpp"
#include "persistence/keys.hpp"
#include "persistence/payment_rows.hpp"

namespace canopy::persistence {

using namespace canopy::domain;

std::optional<OrgState> load_org(const Store& store, OrgId id, std::uint64_t* as_of) {
  std::string bytes;
  if (!store.get(Table::orgs, u64_key(raw(id)), bytes).ok()) return std::nullopt;
  auto org = decode_org(bytes, as_of);
  if (org) CANOPY_ASSERT(!check_invariants(*org).has_value());
  return org;
}

Materializer::Entry* Materializer::load(OrgId id) {
  const std::uint64_t h = index_.hash(id);
  if (EntryNode* node = index_.find(id, h)) return &node->second;
  Entry entry;
  auto org = load_org(store_, id, &entry.as_of);
  if (!org) return nullptr;
  entry.org = std::move(*org);
  return &insert(id, h, std::move(entry));
}

Materializer::Entry& Materializer::insert(OrgId id, std::uint64_t hash, Entry entry) {
  auto [it, inserted] = entries_.emplace(id, std::move(entry));
  CANOPY_ASSERT(inserted);
  index_.insert(&*it, hash);
  return it->second;
}

void Materializer::mark_dirty(OrgId id, Entry& entry, std::uint64_t seq) {
  if (entry.dirty_since != 0) return;
  entry.dirty_since = seq;
  entry.dirtied_at = now_;
  dirty_order_.emplace_back(id, seq);
  ++dirty_;
}

void Materializer::write(OrgId id, Entry& entry, WriteOps& ops) {
  // Assert the state right before it is written (TigerBeetle habit): a broken org never reaches disk.
  if (auto broken = check_invariants(entry.org)) invariant_failed(broken->c_str(), __FILE__, __LINE__);
  ops.push_back(WriteOp{Table::orgs, u64_key(raw(id)), encode(entry.org, last_seq_)});
}

bool Materializer::oldest_due(std::chrono::steady_clock::time_point cutoff) {
  low_water_mark();  // drops stale pairs from the front
  if (dirty_order_.empty()) return false;
  return entries_.at(dirty_order_.front().first).dirtied_at <= cutoff;
}

bool Materializer::any_due(std::chrono::steady_clock::time_point cutoff) {
  return epoch_next_ < epoch_.size() || oldest_due(cutoff) || ids_.due(cutoff) || usage_.due(cutoff);
}

std::uint64_t Materializer::low_water_mark() {
  while (!dirty_order_.empty()) {
    const auto& [id, seq] = dirty_order_.front();
    auto it = entries_.find(id);
    if (it != entries_.end() && it->second.dirty_since == seq) return std::min(seq - 1, side_rows_mark());
    dirty_order_.pop_front();  // written (and maybe dirtied again, queued again) since
  }
  return side_rows_mark();
}

std::uint64_t Materializer::side_rows_mark() {
  return std::min(ids_.indexed_through(last_seq_), usage_.low_water(last_seq_));
}

void Materializer::write_usage_of(OrgId org, WriteOps& ops) {
  usage_.write_org(org, ops);
  put_mark(ops);
}

void Materializer::write_all_usage(WriteOps& ops) {
  usage_.write_all(ops);
  put_mark(ops);
}

void Materializer::put_mark(WriteOps& ops) {
  const std::uint64_t mark = low_water_mark();
  if (mark == mark_written_) return;
  mark_written_ = mark;
  ops.push_back(WriteOp{Table::checkpoint, std::string(checkpoint_mark_key), u64_key(mark)});
}

namespace {

void put_payment(WriteOps& ops, std::uint64_t seq, OrgId org, const PaymentRow& row) {
  ops.push_back(WriteOp{Table::payments, payment_key(org, seq), encode(row)});
}

std::string token_key(const TokenHash& hash) { return std::string(hash.begin(), hash.end()); }

void put_token(WriteOps& ops, const TokenHash& hash, const TokenRow& row) {
  ops.push_back(WriteOp{Table::tokens, token_key(hash), encode(row)});
}

struct SideRows {
  std::uint64_t seq;
  WriteOps& ops;
  const Store& store;
  PendingIdRows& ids;
  std::chrono::steady_clock::time_point now;

  void operator()(const UserCreated& r) const {
    ops.push_back(WriteOp{Table::users, u64_key(raw(r.user)), encode(UserRow{r.user, r.email, r.name, r.at})});
    ops.push_back(WriteOp{Table::emails, r.email, u64_key(raw(r.user))});
    put_token(ops, r.token_hash, TokenRow{TokenKind::user, raw(r.user), 0, false});
  }
  void operator()(const ApiKeyCreated& r) const {
    put_token(ops, r.key.token_hash, TokenRow{TokenKind::api_key, raw(r.org), raw(r.key.id), false});
  }
  void operator()(const ApiKeyRevoked& r) const { ops.push_back(WriteOp{Table::tokens, token_key(r.token_hash), {}, true}); }
  void operator()(const InvitationCreated& r) const {
    put_token(ops, r.invitation.token_hash,
              TokenRow{TokenKind::invitation, raw(r.org), raw(r.invitation.id), false});
  }
  void operator()(const InvitationRevoked& r) const {
    ops.push_back(WriteOp{Table::tokens, token_key(r.token_hash), {}, true});
  }
  void operator()(const InvitationAccepted& r) const {
    if (r.new_user) (*this)(*r.new_user);
    // Kept, marked used: presenting the link again answers 410 invitation_used, not 404.
    put_token(ops, r.token_hash, TokenRow{TokenKind::invitation, raw(r.org), raw(r.invitation), true});
  }
  void operator()(const OrgCreated& r) const {
    if (r.free_credits_micros > 0) {
      put_payment(ops, seq, r.org,
                  PaymentRow{r.free_credits_payment, PaymentKind::free_credits, PaymentStatus::succeeded,
                             r.free_credits_micros, r.at, OrgId::none, {}});
    }
  }
  void operator()(const CycleRolled& r) const {
    if (r.free_credits_micros > 0) {
      put_payment(ops, seq, r.org,
                  PaymentRow{r.free_credits_payment, PaymentKind::free_credits, PaymentStatus::succeeded,
                             r.free_credits_micros, cycle_start(r.cycle), OrgId::none, {}});
    }
  }
  // Its event-id rows wait for a checkpoint (pending_id_rows.hpp).
  void operator()(const ChargeBatch& r) const { ids.add(seq, r, now); }
  void operator()(const PaymentRecorded& r) const {
    put_payment(ops, seq, r.org, PaymentRow{r.payment, r.kind, r.status, r.amount_micros, r.at, OrgId::none, r.reason});
    if (!r.idempotency_key.empty()) {
      ops.push_back(WriteOp{Table::payment_keys, scoped_key(raw(r.org), r.idempotency_key), u64_key(seq)});
    }
  }
  void operator()(const TransferRecorded& r) const {
    put_payment(ops, seq, r.from,
                PaymentRow{r.out_payment, PaymentKind::transfer_out, PaymentStatus::succeeded, r.amount_micros, r.at, r.to, {}});
    put_payment(ops, seq, r.to,
                PaymentRow{r.in_payment, PaymentKind::transfer_in, PaymentStatus::succeeded, r.amount_micros, r.at, r.from, {}});
    if (!r.idempotency_key.empty()) {
      ops.push_back(WriteOp{Table::payment_keys, scoped_key(raw(r.from), r.idempotency_key), u64_key(seq)});
    }
  }
  void operator()(const WebhookAttempted& r) const {
    // The attempt's history row, then the outbox row: gone when finished, rescheduled otherwise.
    std::string key;
    put_u64_be(key, raw(r.webhook));
    put_u64_be(key, UINT64_MAX - seq);
    ops.push_back(WriteOp{Table::webhook_deliveries, std::move(key),
                          encode(DeliveryRow{r.alert, r.alert_type, r.attempt, r.succeeded, r.http_status, r.error, r.at,
                                             r.next_at})});
    if (r.next_at == 0) {
      ops.push_back(WriteOp{Table::webhook_outbox, u64_key(r.delivery), {}, true});
      return;
    }
    std::string bytes;
    if (!store.get(Table::webhook_outbox, u64_key(r.delivery), bytes).ok()) return;  // finished earlier
    auto row = decode_outbox_row(bytes);
    if (!row) return;
    row->attempts = r.attempt;
    row->next_at = r.next_at;
    ops.push_back(WriteOp{Table::webhook_outbox, u64_key(r.delivery), encode(*row)});
  }
  void operator()(const auto&) const {}
};

// When a record happened, for the alerts it causes (0 for records that cause none).
struct RecordTime {
  Timestamp operator()(const ChargeBatch& r) const { return r.at; }
  Timestamp operator()(const PauseSet& r) const { return r.at; }
  Timestamp operator()(const LimitSet& r) const { return r.at; }
  Timestamp operator()(const CycleRolled& r) const { return cycle_start(r.cycle); }
  Timestamp operator()(const PaymentRecorded& r) const { return r.at; }
  Timestamp operator()(const TransferRecorded& r) const { return r.at; }
  Timestamp operator()(const auto&) const { return 0; }
};
Timestamp record_time(const Record& record) { return std::visit(RecordTime{}, record); }

// The outbox row of `alert` for each of the org's webhooks that wants its type, due at once.
void queue_deliveries(const OrgState& org, const Alert& alert, std::uint64_t order, WriteOps& ops) {
  for (const auto& hook : org.webhooks) {
    if (!(hook.events & bit(alert.type))) continue;
    const std::uint64_t delivery = delivery_id(alert.id, hook.id);
    ops.push_back(WriteOp{Table::webhook_outbox, u64_key(delivery), encode(OutboxRow{hook.id, alert, 0, alert.at, order})});
  }
}

}  // namespace

std::optional<std::string> Materializer::add(std::uint64_t seq, const Record& record, WriteOps& ops) {
  CANOPY_ASSERT(last_seq_ == 0 || seq == last_seq_ + 1);
  last_seq_ = seq;
  std::visit(SideRows{seq, ops, store_, ids_, now_}, record);
  usage_.add(seq, record, now_);
  if (const auto* created = std::get_if<OrgCreated>(&record)) {
    Entry* existing = load(created->org);
    if (existing && existing->as_of >= seq) return std::nullopt;  // recovery: the snapshot has it
    Entry& entry = existing ? *existing : insert(created->org, index_.hash(created->org), Entry{});
    entry.org = make_org(*created);
    mark_dirty(created->org, entry, seq);
    return std::nullopt;
  }
  // Orgs whose stored snapshot is as of this record or later already hold it (recovery only).
  std::vector<std::pair<OrgId, Entry*>> targets;
  for (const OrgId id : orgs_touched(record)) {
    Entry* entry = load(id);
    if (!entry) return "names an org that does not exist";
    if (entry->as_of >= seq) continue;
    if (auto refusal = apply_refusal(entry->org, record)) return refusal;
    targets.emplace_back(id, entry);
  }
  const auto* payment = std::get_if<PaymentRecorded>(&record);
  for (auto& [id, entry] : targets) {
    OrgState& org = entry->org;
    const AlertFacts before = facts_of(org);
    domain::apply(org, record);
    mark_dirty(id, *entry, seq);
    const bool recharge = payment && payment->org == id && payment->kind == PaymentKind::auto_recharge;
    auto alerts = alerts_between(before, facts_of(org), org.alerts, id, record_time(record), recharge ? payment : nullptr);
    for (std::uint32_t k = 0; k < alerts.size(); ++k) {
      alerts[k].id = alert_id(seq, id, k);
      queue_deliveries(org, alerts[k], seq * 256 + k, ops);
      alerts_.push_back(std::move(alerts[k]));
    }
  }
  return std::nullopt;
}

void Materializer::flush(WriteOps& ops) {
  for (auto& [id, entry] : entries_) {
    if (entry.dirty_since != 0) write(id, entry, ops);
  }
  entries_.clear();
  index_.clear();
  ++forgets_;
  dirty_order_.clear();
  epoch_.clear();
  epoch_next_ = 0;
  dirty_ = 0;
  usage_.write_all(ops);
  usage_.trim();
  ids_.write_all(ops);
  mark_written_ = last_seq_;
  ops.push_back(WriteOp{Table::checkpoint, std::string(checkpoint_mark_key), u64_key(last_seq_)});
}

std::size_t Materializer::flush_due(WriteOps& ops, std::chrono::steady_clock::time_point cutoff,
                                    std::size_t max_orgs) {
  // Once the org dirty longest is due, every org dirty at that moment is written, in key order, a
  // slice per commit: the snapshots of one commit share LMDB leaf pages and each leaf is written about
  // once an interval, as a whole checkpoint would, without one commit carrying them all. (Writing
  // each org as it came due put as many random leaves in every commit as orgs: commits ~50% slower.)
  // Any order is correct: the mark below is what recovery trusts.
  if (epoch_next_ >= epoch_.size() && oldest_due(cutoff)) {
    epoch_.clear();
    epoch_next_ = 0;
    for (const auto& [id, entry] : entries_) {
      if (entry.dirty_since != 0) epoch_.push_back(id);
    }
    std::sort(epoch_.begin(), epoch_.end());
  }
  std::size_t written = 0;
  while (written < max_orgs && epoch_next_ < epoch_.size()) {
    auto it = entries_.find(epoch_[epoch_next_++]);
    if (it == entries_.end() || it->second.dirty_since == 0) continue;
    write(it->first, it->second, ops);
    // Kept, clean, as of the snapshot just written: the next record to touch the org needs no read
    // and decode (they were a tenth of the writer's time).
    it->second.as_of = last_seq_;
    it->second.dirty_since = 0;
    --dirty_;
    ++written;
  }
  // Once more clean orgs are cached than the bound, half of them are forgotten (the store has them
  // all): a scan of the cache every bound/2 orgs written, not every commit.
  if (entries_.size() - dirty_ > limits::materializer_orgs_cached_max) {
    forget_clean(entries_, dirty_, limits::materializer_orgs_cached_max / 2,
                 [this](const EntryNode& node) { index_.erase(&node); });
    CANOPY_ASSERT(index_.size() == entries_.size());  // no index slot points at a forgotten org
    ++forgets_;
  }
  // The event-id rows accepted since the last checkpoint of them, on the same clock as the orgs'.
  if (ids_.due(cutoff) && ids_.begin()) written += ids_.write_slice(ops, limits::checkpoint_id_rows_per_commit_max);
  // Usage buckets the same way, and the clean ones forgotten once too many are cached.
  written += usage_.write_due(ops, cutoff, limits::checkpoint_bucket_rows_per_commit_max);
  usage_.trim();
  put_mark(ops);
  return written;
}

}  // namespace canopy::persistence
