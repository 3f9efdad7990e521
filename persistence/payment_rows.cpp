#include "persistence/payment_rows.hpp"

#include "persistence/codec.hpp"
#include "persistence/keys.hpp"

namespace canopy::persistence {

using namespace canopy::domain;

std::string payment_key(OrgId org, std::uint64_t seq) { return scoped_key(raw(org), u64_key(UINT64_MAX - seq)); }

namespace {

std::optional<PaymentRow> payment_row(const Store& store, OrgId org, std::uint64_t seq) {
  std::string bytes;
  if (!store.get(Table::payments, payment_key(org, seq), bytes).ok()) return std::nullopt;
  return decode_payment(bytes);
}

}  // namespace

std::optional<Record> decided_payment(const Store& store, OrgId org, const std::string& key) {
  std::string seq_bytes;
  if (!store.get(Table::payment_keys, scoped_key(raw(org), key), seq_bytes).ok()) return std::nullopt;
  const std::uint64_t seq = get_u64_be(seq_bytes);
  const auto row = payment_row(store, org, seq);
  if (!row) return std::nullopt;
  if (row->kind != PaymentKind::transfer_out) {
    return PaymentRecorded{org, row->id, row->kind, row->status, row->amount_micros, row->at, key, row->reason};
  }
  // A transfer wrote the sender's row (keyed) and the receiver's, which holds the other payment id.
  const auto in = payment_row(store, row->counterparty, seq);
  if (!in) return std::nullopt;
  return TransferRecorded{org, row->counterparty, row->id, in->id, row->amount_micros, row->at, key};
}

}  // namespace canopy::persistence
