#include "persistence/codec.hpp"

#include <cstring>

namespace canopy::persistence {
namespace {

using namespace canopy::domain;

// Type tags. Never reuse one.
enum Tag : std::uint8_t {
  tag_user_created = 1,
  tag_org_created = 2,
  tag_org_renamed = 3,
  tag_member_set = 4,
  tag_charge_batch = 5,
  tag_pause_set = 6,
  tag_cycle_rolled = 7,
  tag_limit_set = 8,
  tag_consolidated_set = 9,
  tag_subscription_set = 10,
  tag_payment_method_set = 11,
  tag_auto_recharge_set = 12,
  tag_payment_recorded = 13,
  tag_transfer_recorded = 14,
  tag_org_state = 64,
  tag_user_row = 65,
  tag_payment_row = 66,
};
constexpr std::uint8_t version_1 = 1;

class Writer {
 public:
  explicit Writer(std::uint8_t tag) { out_.push_back(static_cast<char>(tag)), out_.push_back(static_cast<char>(version_1)); }
  void u(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void i(std::int64_t v) { u((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63)); }
  void b(bool v) { out_.push_back(v ? 1 : 0); }
  void s(std::string_view v) {
    u(v.size());
    out_.append(v);
  }
  void bytes(const std::uint8_t* data, std::size_t size) { out_.append(reinterpret_cast<const char*>(data), size); }
  template <class E> void e(E v) { u(static_cast<std::uint64_t>(v)); }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  Reader(std::string_view in, std::uint8_t tag) : in_(in) {
    ok_ = in_.size() >= 2 && static_cast<std::uint8_t>(in_[0]) == tag && static_cast<std::uint8_t>(in_[1]) == version_1;
    pos_ = 2;
  }
  std::uint64_t u() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return fail();
      const auto byte = static_cast<std::uint8_t>(in_[pos_++]);
      v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    return fail();
  }
  std::int64_t i() {
    const std::uint64_t z = u();
    return static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1));
  }
  bool b() {
    if (pos_ >= in_.size()) return fail() != 0;
    const char c = in_[pos_++];
    if (c != 0 && c != 1) fail();
    return c == 1;
  }
  std::string s() {
    const std::uint64_t n = u();
    if (!ok_ || n > in_.size() - pos_) {
      fail();
      return {};
    }
    std::string out(in_.substr(pos_, n));
    pos_ += n;
    return out;
  }
  void bytes(std::uint8_t* out, std::size_t size) {
    if (size > in_.size() - pos_) {
      fail();
      return;
    }
    std::memcpy(out, in_.data() + pos_, size);
    pos_ += size;
  }
  template <class E> E e(std::uint64_t max) {
    const std::uint64_t v = u();
    if (v > max) fail();
    return static_cast<E>(v);
  }
  // True when every field decoded and nothing is left over.
  bool done() const { return ok_ && pos_ == in_.size(); }
  bool ok() const { return ok_; }

 private:
  std::uint64_t fail() {
    ok_ = false;
    pos_ = in_.size();
    return 0;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = false;
};

void put_opt_plan(Writer& w, const std::optional<Plan>& p) { w.u(p ? static_cast<std::uint64_t>(*p) : 0); }
std::optional<Plan> get_opt_plan(Reader& r) {
  const auto v = r.e<std::uint8_t>(4);
  return v == 0 ? std::nullopt : std::optional<Plan>(static_cast<Plan>(v));
}
void put_opt_micros(Writer& w, const std::optional<Micros>& m) {
  w.b(m.has_value());
  if (m) w.i(*m);
}
std::optional<Micros> get_opt_micros(Reader& r) {
  if (!r.b()) return std::nullopt;
  return r.i();
}
void put_method(Writer& w, const std::optional<PaymentMethod>& m) {
  w.b(m.has_value());
  if (!m) return;
  w.s(m->brand);
  w.s(m->last4);
  w.u(m->exp_month);
  w.u(m->exp_year);
}
std::optional<PaymentMethod> get_method(Reader& r) {
  if (!r.b()) return std::nullopt;
  PaymentMethod m;
  m.brand = r.s();
  m.last4 = r.s();
  m.exp_month = r.e<std::uint8_t>(12);
  m.exp_year = r.e<std::uint16_t>(9999);
  return m;
}
void put_recharge(Writer& w, const AutoRecharge& a) {
  w.b(a.enabled);
  w.i(a.threshold_micros);
  w.i(a.amount_micros);
}
AutoRecharge get_recharge(Reader& r) {
  AutoRecharge a;
  a.enabled = r.b();
  a.threshold_micros = r.i();
  a.amount_micros = r.i();
  return a;
}

struct RecordEncoder {
  std::string operator()(const UserCreated& x) const {
    Writer w(tag_user_created);
    w.u(raw(x.user));
    w.s(x.email);
    w.s(x.name);
    w.bytes(x.token_hash.data(), x.token_hash.size());
    w.i(x.at);
    return w.take();
  }
  std::string operator()(const OrgCreated& x) const {
    Writer w(tag_org_created);
    w.u(raw(x.org));
    w.u(raw(x.parent));
    w.s(x.name);
    put_opt_plan(w, x.subscription);
    w.u(raw(x.owner));
    w.u(x.depth);
    w.i(x.at);
    w.i(x.cycle);
    w.b(x.free_credits_recipient);
    w.i(x.free_credits_micros);
    w.u(raw(x.free_credits_payment));
    return w.take();
  }
  std::string operator()(const OrgRenamed& x) const {
    Writer w(tag_org_renamed);
    w.u(raw(x.org));
    w.s(x.name);
    return w.take();
  }
  std::string operator()(const MemberSet& x) const {
    Writer w(tag_member_set);
    w.u(raw(x.org));
    w.u(raw(x.user));
    w.u(x.role ? static_cast<std::uint64_t>(*x.role) : 0);
    return w.take();
  }
  std::string operator()(const ChargeBatch& x) const {
    Writer w(tag_charge_batch);
    w.u(x.chain.size());
    for (const auto& hop : x.chain) {
      w.u(raw(hop.org));
      w.i(hop.cycle);
    }
    w.i(x.at);
    w.u(x.events.size());
    for (const auto& e : x.events) {
      w.s(e.id);
      w.s(e.type);
      w.u(e.quantity);
      w.i(e.cost_micros);
      w.i(e.occurred_at);
    }
    return w.take();
  }
  std::string operator()(const PauseSet& x) const {
    Writer w(tag_pause_set);
    w.u(raw(x.org));
    w.i(x.cycle);
    return w.take();
  }
  std::string operator()(const CycleRolled& x) const {
    Writer w(tag_cycle_rolled);
    w.u(raw(x.org));
    w.i(x.cycle);
    w.i(x.free_credits_micros);
    w.u(raw(x.free_credits_payment));
    return w.take();
  }
  std::string operator()(const LimitSet& x) const {
    Writer w(tag_limit_set);
    w.u(raw(x.org));
    put_opt_micros(w, x.limit_micros);
    return w.take();
  }
  std::string operator()(const ConsolidatedSet& x) const {
    Writer w(tag_consolidated_set);
    w.u(raw(x.org));
    w.b(x.enabled);
    return w.take();
  }
  std::string operator()(const SubscriptionSet& x) const {
    Writer w(tag_subscription_set);
    w.u(raw(x.org));
    put_opt_plan(w, x.plan);
    return w.take();
  }
  std::string operator()(const PaymentMethodSet& x) const {
    Writer w(tag_payment_method_set);
    w.u(raw(x.org));
    put_method(w, x.method);
    return w.take();
  }
  std::string operator()(const AutoRechargeSet& x) const {
    Writer w(tag_auto_recharge_set);
    w.u(raw(x.org));
    put_recharge(w, x.config);
    return w.take();
  }
  std::string operator()(const PaymentRecorded& x) const {
    Writer w(tag_payment_recorded);
    w.u(raw(x.org));
    w.u(raw(x.payment));
    w.e(x.kind);
    w.e(x.status);
    w.i(x.amount_micros);
    w.i(x.at);
    w.s(x.idempotency_key);
    w.s(x.reason);
    return w.take();
  }
  std::string operator()(const TransferRecorded& x) const {
    Writer w(tag_transfer_recorded);
    w.u(raw(x.from));
    w.u(raw(x.to));
    w.u(raw(x.out_payment));
    w.u(raw(x.in_payment));
    w.i(x.amount_micros);
    w.i(x.at);
    w.s(x.idempotency_key);
    return w.take();
  }
};

template <class T>
std::optional<Record> finish(Reader& r, T&& value) {
  if (!r.done()) return std::nullopt;
  return Record{std::forward<T>(value)};
}

std::optional<Record> decode_tagged(std::uint8_t tag, std::string_view bytes) {
  Reader r(bytes, tag);
  switch (tag) {
    case tag_user_created: {
      UserCreated x;
      x.user = UserId{r.u()};
      x.email = r.s();
      x.name = r.s();
      r.bytes(x.token_hash.data(), x.token_hash.size());
      x.at = r.i();
      return finish(r, std::move(x));
    }
    case tag_org_created: {
      OrgCreated x;
      x.org = OrgId{r.u()};
      x.parent = OrgId{r.u()};
      x.name = r.s();
      x.subscription = get_opt_plan(r);
      x.owner = UserId{r.u()};
      x.depth = r.e<std::uint8_t>(255);
      x.at = r.i();
      x.cycle = static_cast<Cycle>(r.i());
      x.free_credits_recipient = r.b();
      x.free_credits_micros = r.i();
      x.free_credits_payment = PaymentId{r.u()};
      return finish(r, std::move(x));
    }
    case tag_org_renamed: {
      OrgRenamed x;
      x.org = OrgId{r.u()};
      x.name = r.s();
      return finish(r, std::move(x));
    }
    case tag_member_set: {
      MemberSet x;
      x.org = OrgId{r.u()};
      x.user = UserId{r.u()};
      const auto role = r.e<std::uint8_t>(4);
      if (role != 0) x.role = static_cast<Role>(role);
      return finish(r, std::move(x));
    }
    case tag_charge_batch: {
      ChargeBatch x;
      const auto hops = r.u();
      if (hops == 0 || hops > 64) return std::nullopt;
      for (std::uint64_t k = 0; k < hops && r.ok(); ++k) {
        ChainHop hop;
        hop.org = OrgId{r.u()};
        hop.cycle = static_cast<Cycle>(r.i());
        x.chain.push_back(hop);
      }
      x.at = r.i();
      const auto n = r.u();
      if (n > bytes.size()) return std::nullopt;
      x.events.reserve(n);
      for (std::uint64_t k = 0; k < n && r.ok(); ++k) {
        ChargeEvent e;
        e.id = r.s();
        e.type = r.s();
        e.quantity = r.u();
        e.cost_micros = r.i();
        e.occurred_at = r.i();
        x.events.push_back(std::move(e));
      }
      return finish(r, std::move(x));
    }
    case tag_pause_set: {
      PauseSet x;
      x.org = OrgId{r.u()};
      x.cycle = static_cast<Cycle>(r.i());
      return finish(r, std::move(x));
    }
    case tag_cycle_rolled: {
      CycleRolled x;
      x.org = OrgId{r.u()};
      x.cycle = static_cast<Cycle>(r.i());
      x.free_credits_micros = r.i();
      x.free_credits_payment = PaymentId{r.u()};
      return finish(r, std::move(x));
    }
    case tag_limit_set: {
      LimitSet x;
      x.org = OrgId{r.u()};
      x.limit_micros = get_opt_micros(r);
      return finish(r, std::move(x));
    }
    case tag_consolidated_set: {
      ConsolidatedSet x;
      x.org = OrgId{r.u()};
      x.enabled = r.b();
      return finish(r, std::move(x));
    }
    case tag_subscription_set: {
      SubscriptionSet x;
      x.org = OrgId{r.u()};
      x.plan = get_opt_plan(r);
      return finish(r, std::move(x));
    }
    case tag_payment_method_set: {
      PaymentMethodSet x;
      x.org = OrgId{r.u()};
      x.method = get_method(r);
      return finish(r, std::move(x));
    }
    case tag_auto_recharge_set: {
      AutoRechargeSet x;
      x.org = OrgId{r.u()};
      x.config = get_recharge(r);
      return finish(r, std::move(x));
    }
    case tag_payment_recorded: {
      PaymentRecorded x;
      x.org = OrgId{r.u()};
      x.payment = PaymentId{r.u()};
      x.kind = r.e<PaymentKind>(6);
      x.status = r.e<PaymentStatus>(2);
      x.amount_micros = r.i();
      x.at = r.i();
      x.idempotency_key = r.s();
      x.reason = r.s();
      return finish(r, std::move(x));
    }
    case tag_transfer_recorded: {
      TransferRecorded x;
      x.from = OrgId{r.u()};
      x.to = OrgId{r.u()};
      x.out_payment = PaymentId{r.u()};
      x.in_payment = PaymentId{r.u()};
      x.amount_micros = r.i();
      x.at = r.i();
      x.idempotency_key = r.s();
      return finish(r, std::move(x));
    }
    default: return std::nullopt;
  }
}

}  // namespace

std::string encode(const Record& record) { return std::visit(RecordEncoder{}, record); }

std::optional<Record> decode_record(std::string_view bytes) {
  if (bytes.empty()) return std::nullopt;
  return decode_tagged(static_cast<std::uint8_t>(bytes[0]), bytes);
}

std::string encode(const OrgState& o) {
  Writer w(tag_org_state);
  w.u(raw(o.id));
  w.u(raw(o.parent));
  w.s(o.name);
  w.i(o.created_at);
  w.u(o.depth);
  w.b(o.consolidated);
  put_opt_plan(w, o.subscription);
  put_opt_micros(w, o.monthly_limit_micros);
  put_method(w, o.payment_method);
  put_recharge(w, o.auto_recharge);
  w.b(o.free_credits_recipient);
  w.i(o.balance_micros);
  w.i(o.cycle);
  w.i(o.cycle_spend_micros);
  w.b(o.paused_flag);
  w.u(o.modules_enabled);
  w.b(o.show_credits_balance);
  w.u(o.members.size());
  for (const auto& m : o.members) {
    w.u(raw(m.user));
    w.e(m.role);
  }
  return w.take();
}

std::optional<OrgState> decode_org(std::string_view bytes) {
  Reader r(bytes, tag_org_state);
  OrgState o;
  o.id = OrgId{r.u()};
  o.parent = OrgId{r.u()};
  o.name = r.s();
  o.created_at = r.i();
  o.depth = r.e<std::uint8_t>(255);
  o.consolidated = r.b();
  o.subscription = get_opt_plan(r);
  o.monthly_limit_micros = get_opt_micros(r);
  o.payment_method = get_method(r);
  o.auto_recharge = get_recharge(r);
  o.free_credits_recipient = r.b();
  o.balance_micros = r.i();
  o.cycle = static_cast<Cycle>(r.i());
  o.cycle_spend_micros = r.i();
  o.paused_flag = r.b();
  o.modules_enabled = r.e<ModuleSet>(255);
  o.show_credits_balance = r.b();
  const auto n = r.u();
  if (n > bytes.size()) return std::nullopt;
  for (std::uint64_t k = 0; k < n && r.ok(); ++k) {
    Member m;
    m.user = UserId{r.u()};
    const auto role = r.e<std::uint8_t>(4);
    if (role == 0) return std::nullopt;
    m.role = static_cast<Role>(role);
    o.members.push_back(m);
  }
  if (!r.done()) return std::nullopt;
  return o;
}

std::string encode(const UserRow& u) {
  Writer w(tag_user_row);
  w.u(raw(u.id));
  w.s(u.email);
  w.s(u.name);
  w.i(u.created_at);
  return w.take();
}

std::optional<UserRow> decode_user(std::string_view bytes) {
  Reader r(bytes, tag_user_row);
  UserRow u;
  u.id = UserId{r.u()};
  u.email = r.s();
  u.name = r.s();
  u.created_at = r.i();
  if (!r.done()) return std::nullopt;
  return u;
}

std::string encode(const PaymentRow& p) {
  Writer w(tag_payment_row);
  w.u(raw(p.id));
  w.e(p.kind);
  w.e(p.status);
  w.i(p.amount_micros);
  w.i(p.at);
  w.u(raw(p.counterparty));
  w.s(p.reason);
  return w.take();
}

std::optional<PaymentRow> decode_payment(std::string_view bytes) {
  Reader r(bytes, tag_payment_row);
  PaymentRow p;
  p.id = PaymentId{r.u()};
  p.kind = r.e<PaymentKind>(6);
  p.status = r.e<PaymentStatus>(2);
  p.amount_micros = r.i();
  p.at = r.i();
  p.counterparty = OrgId{r.u()};
  p.reason = r.s();
  if (!r.done()) return std::nullopt;
  return p;
}

}  // namespace canopy::persistence
