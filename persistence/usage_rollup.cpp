#include "persistence/usage_rollup.hpp"

#include "config/limits.hpp"
#include "persistence/codec.hpp"
#include "persistence/forget_clean.hpp"
#include "persistence/keys.hpp"

namespace canopy::persistence {

using namespace canopy::domain;

namespace {
constexpr std::uint8_t kind(BucketKind k) { return static_cast<std::uint8_t>(k); }
// The org a bucket's key belongs to, as the key's bytes.
std::string_view org_of(std::string_view key) { return key.substr(0, scope_bytes); }
}  // namespace

void UsageRollup::bump(std::uint64_t org, BucketKind bucket, std::int32_t period, std::string_view type,
                       std::uint64_t seq, std::uint64_t count, std::uint64_t quantity, Micros micros) {
  key_.clear();
  append_usage_key(key_, org, kind(bucket), period, type);
  const std::uint64_t h = index_.hash(key_);
  Node* node = index_.find(key_, h);
  if (!node) {
    Cached cached;
    std::string bytes;
    if (store_.get(Table::usage, key_, bytes).ok()) {
      auto decoded = decode_bucket(bytes);
      CANOPY_ASSERT(decoded.has_value());
      cached.bucket = *decoded;
    }
    auto [it, inserted] = cache_.emplace(key_, cached);
    CANOPY_ASSERT(inserted);  // else the index lost a bucket the map holds
    node = &*it;
    index_.insert(node, h);
  }
  Cached& c = node->second;
  Bucket& b = c.bucket;
  if (b.last_seq >= seq) return;  // counted before (recovery replaying what was already committed)
  b.count += count;
  b.quantity += quantity;
  const auto sum = checked_add(b.micros, micros);
  CANOPY_ASSERT(sum.has_value());
  b.micros = *sum;
  b.last_seq = seq;
  if (c.dirty_since != 0) return;
  c.dirty_since = seq;
  c.dirtied_at = now_;
  dirty_order_.emplace_back(node, seq);
  ++dirty_;
}

void UsageRollup::credit(std::uint64_t seq, OrgId org, Timestamp at, Micros amount) {
  if (amount <= 0) return;
  bump(raw(org), BucketKind::credits_day, day_of(at), {}, seq, 1, 0, amount);
  bump(raw(org), BucketKind::credits_month, cycle_of(at), {}, seq, 1, 0, amount);
}

void UsageRollup::add(std::uint64_t seq, const Record& record, Clock::time_point now) {
  now_ = now;
  if (const auto* charge = std::get_if<ChargeBatch>(&record)) {
    // One bump per bucket per record, however many events the batch holds.
    struct Sum {
      std::uint64_t count = 0, quantity = 0;
      Micros micros = 0;
    };
    std::map<std::string_view, Sum> by_type;
    Sum total;
    for (const auto& e : charge->events) {
      Sum& s = by_type[e.type];
      ++s.count;
      s.quantity += e.quantity;
      s.micros += e.cost_micros;
      ++total.count;
      total.quantity += e.quantity;
      total.micros += e.cost_micros;
    }
    const std::uint64_t org = raw(charge->origin());
    const Day day = day_of(charge->at);
    const Cycle month = cycle_of(charge->at);
    for (const auto& [type, s] : by_type) {
      bump(org, BucketKind::usage_day, day, type, seq, s.count, s.quantity, s.micros);
      bump(org, BucketKind::usage_month, month, type, seq, s.count, s.quantity, s.micros);
    }
    bump(org, BucketKind::spend_day, day, {}, seq, total.count, total.quantity, total.micros);
  } else if (const auto* payment = std::get_if<PaymentRecorded>(&record)) {
    if (payment->status == PaymentStatus::succeeded) credit(seq, payment->org, payment->at, payment->amount_micros);
  } else if (const auto* transfer = std::get_if<TransferRecorded>(&record)) {
    credit(seq, transfer->to, transfer->at, transfer->amount_micros);
  } else if (const auto* rolled = std::get_if<CycleRolled>(&record)) {
    credit(seq, rolled->org, cycle_start(rolled->cycle), rolled->free_credits_micros);
  } else if (const auto* created = std::get_if<OrgCreated>(&record)) {
    credit(seq, created->org, created->at, created->free_credits_micros);
  }
}

void UsageRollup::write(Node& node, WriteOps& ops) {
  Cached& c = node.second;
  if (c.dirty_since == 0) return;
  WriteOp& op = ops.add(Table::usage);
  op.key.assign(node.first);
  op.value = encode(c.bucket);
  c.dirty_since = 0;
  --dirty_;
}

std::uint64_t UsageRollup::low_water(std::uint64_t last_seq) {
  while (!dirty_order_.empty()) {
    const auto& [node, seq] = dirty_order_.front();
    if (node->second.dirty_since == seq) return seq - 1;
    dirty_order_.pop_front();  // written (and maybe dirtied again, queued again) since
  }
  return last_seq;
}

bool UsageRollup::due(Clock::time_point cutoff) {
  if (epoch_next_ < epoch_.size()) return true;
  low_water(0);  // drops stale pairs from the front
  return !dirty_order_.empty() && dirty_order_.front().first->second.dirtied_at <= cutoff;
}

std::size_t UsageRollup::write_due(WriteOps& ops, Clock::time_point cutoff, std::size_t max_rows) {
  if (epoch_next_ >= epoch_.size() && due(cutoff)) {
    epoch_.clear();
    epoch_next_ = 0;
    for (auto& node : cache_) {
      if (node.second.dirty_since != 0) epoch_.push_back(&node);
    }
  }
  // A slice ends only where the org changes: a record's buckets are all its origin org's, so no
  // report ever reads a record counted in some of its buckets and not yet in the others.
  std::size_t written = 0;
  std::string_view org;
  while (epoch_next_ < epoch_.size()) {
    Node& node = *epoch_[epoch_next_];
    const std::string_view node_org = org_of(node.first);
    if (written >= max_rows && node_org != org) break;
    ++epoch_next_;
    org = node_org;
    if (node.second.dirty_since == 0) continue;  // a report wrote it meanwhile
    write(node, ops);
    ++written;
  }
  return written;
}

void UsageRollup::write_org(OrgId org, WriteOps& ops) {
  const std::string prefix = u64_key(raw(org));
  for (auto it = cache_.lower_bound(prefix); it != cache_.end() && org_of(it->first) == prefix; ++it) write(*it, ops);
}

void UsageRollup::write_all(WriteOps& ops) {
  for (auto& node : cache_) write(node, ops);
}

void UsageRollup::trim() {
  if (cache_.size() - dirty_ <= limits::usage_rollup_cache_max) return;
  // Only dirty buckets stay referenced: the stale pairs and the written part of the epoch go first,
  // so nothing points at a bucket about to be forgotten.
  std::erase_if(dirty_order_, [](const auto& p) { return p.first->second.dirty_since != p.second; });
  epoch_.erase(epoch_.begin(), epoch_.begin() + static_cast<std::ptrdiff_t>(epoch_next_));
  epoch_next_ = 0;
  std::erase_if(epoch_, [](const Node* n) { return n->second.dirty_since == 0; });
  forget_clean(cache_, dirty_, limits::usage_rollup_cache_max / 2, [this](const Node& node) { index_.erase(&node); });
  CANOPY_ASSERT(index_.size() == cache_.size());  // no index slot points at a forgotten bucket
  ++forgets_;
}

}  // namespace canopy::persistence
