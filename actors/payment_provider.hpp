// The seam to whoever moves real money for top-ups and auto-recharge.
//
// The built-in provider moves nothing: it records each charge (for tests and the demo) and declines
// cards whose last4 is "0002", like the well-known decline test card, so declines can be exercised.
// A provider that talks to a network must not block an org actor: it would run in a detached actor
// and answer by message. charge() here is synchronous because the built-in one is.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "domain/org.hpp"

namespace canopy::actors {

struct ProviderCharge {
  domain::OrgId org = domain::OrgId::none;
  domain::Micros amount_micros = 0;
  std::string idempotency_key;
  bool approved = false;
};

class PaymentProvider {
 public:
  virtual ~PaymentProvider() = default;
  // Returns whether the charge was approved; `decline_reason` says why not.
  virtual bool charge(domain::OrgId org, const domain::PaymentMethod& method, domain::Micros amount_micros,
                      const std::string& idempotency_key, std::string& decline_reason) = 0;
};

class BuiltinPaymentProvider final : public PaymentProvider {
 public:
  bool charge(domain::OrgId org, const domain::PaymentMethod& method, domain::Micros amount_micros,
              const std::string& idempotency_key, std::string& decline_reason) override {
    const bool approved = method.last4 != "0002";
    if (!approved) decline_reason = "Your card was declined.";
    std::lock_guard lock(mutex_);
    charges_.push_back(ProviderCharge{org, amount_micros, idempotency_key, approved});
    return approved;
  }
  std::vector<ProviderCharge> charges() const {
    std::lock_guard lock(mutex_);
    return charges_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<ProviderCharge> charges_;
};

}  // namespace canopy::actors
