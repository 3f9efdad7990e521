#include "persistence/usage_rollup.hpp"

#include <map>

#include "persistence/codec.hpp"
#include "persistence/keys.hpp"

namespace canopy::persistence {

using namespace canopy::domain;

namespace {
constexpr std::uint8_t kind(BucketKind k) { return static_cast<std::uint8_t>(k); }
}  // namespace

void UsageRollup::bump(std::string key, std::uint64_t seq, std::uint64_t count, std::uint64_t quantity, Micros micros,
                       WriteOps& ops) {
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    Bucket bucket;
    std::string bytes;
    if (store_.get(Table::usage, key, bytes).ok()) {
      auto decoded = decode_bucket(bytes);
      CANOPY_ASSERT(decoded.has_value());
      bucket = *decoded;
    }
    it = cache_.emplace(key, bucket).first;
  }
  Bucket& b = it->second;
  if (b.last_seq >= seq) return;  // counted before (recovery replaying what was already committed)
  b.count += count;
  b.quantity += quantity;
  const auto sum = checked_add(b.micros, micros);
  CANOPY_ASSERT(sum.has_value());
  b.micros = *sum;
  b.last_seq = seq;
  ops.push_back(WriteOp{Table::usage, std::move(key), encode(b)});
}

void UsageRollup::credit(std::uint64_t seq, OrgId org, Timestamp at, Micros amount, WriteOps& ops) {
  if (amount <= 0) return;
  bump(usage_key(raw(org), kind(BucketKind::credits_day), day_of(at)), seq, 1, 0, amount, ops);
  bump(usage_key(raw(org), kind(BucketKind::credits_month), cycle_of(at)), seq, 1, 0, amount, ops);
}

void UsageRollup::add(std::uint64_t seq, const Record& record, WriteOps& ops) {
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
      bump(usage_key(org, kind(BucketKind::usage_day), day, type), seq, s.count, s.quantity, s.micros, ops);
      bump(usage_key(org, kind(BucketKind::usage_month), month, type), seq, s.count, s.quantity, s.micros, ops);
    }
    bump(usage_key(org, kind(BucketKind::spend_day), day), seq, total.count, total.quantity, total.micros, ops);
  } else if (const auto* payment = std::get_if<PaymentRecorded>(&record)) {
    if (payment->status == PaymentStatus::succeeded) credit(seq, payment->org, payment->at, payment->amount_micros, ops);
  } else if (const auto* transfer = std::get_if<TransferRecorded>(&record)) {
    credit(seq, transfer->to, transfer->at, transfer->amount_micros, ops);
  } else if (const auto* rolled = std::get_if<CycleRolled>(&record)) {
    credit(seq, rolled->org, cycle_start(rolled->cycle), rolled->free_credits_micros, ops);
  } else if (const auto* created = std::get_if<OrgCreated>(&record)) {
    credit(seq, created->org, created->at, created->free_credits_micros, ops);
  }
}

}  // namespace canopy::persistence
