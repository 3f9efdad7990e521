// The payments table (keys.hpp): an org's payment history, and how an idempotent top-up or transfer
// finds what it decided the first time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "domain/records.hpp"
#include "persistence/store.hpp"

namespace canopy::persistence {

// The key of the payment row that journal record `seq` wrote for `org` (newest first in a scan).
std::string payment_key(domain::OrgId org, std::uint64_t seq);

// The record that decided the top-up (PaymentRecorded) or transfer (TransferRecorded) that `org` made
// with Idempotency-Key `key`, rebuilt from the rows it wrote (payment_keys, payments): its journal
// record may have been trimmed since. Nullopt when the key was never used, or the rows cannot be read.
std::optional<domain::Record> decided_payment(const Store& store, domain::OrgId org, const std::string& key);

}  // namespace canopy::persistence
