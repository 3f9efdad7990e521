#include "persistence/codec.hpp"

#include <algorithm>
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
  tag_customization_set = 15,
  tag_show_credits_set = 16,
  tag_api_key_created = 17,
  tag_api_key_revoked = 18,
  tag_invitation_created = 19,
  tag_invitation_revoked = 20,
  tag_invitation_accepted = 21,
  tag_alerts_set = 22,
  tag_webhook_created = 23,
  tag_webhook_deleted = 24,
  tag_webhook_attempted = 25,
  tag_org_state = 64,
  tag_user_row = 65,
  tag_payment_row = 66,
  tag_bucket = 67,
  tag_outbox_row = 68,
  tag_delivery_row = 69,
};
constexpr std::uint8_t version_1 = 1;
// Org state v2 adds customization, custom domain, API keys and invitations after the members; v3
// alert settings and webhooks after those.
constexpr std::uint8_t org_state_version = 4;  // 4: the journal seq the snapshot is as of
// PauseSet and LimitSet v2 add their time.
constexpr std::uint8_t timed_version = 2;
// What a charge event usually takes besides its id's and type's bytes (two one-byte lengths, a small
// quantity, a cost of a few bytes, a 5-byte time): a batch's record is sized once from it, and grows
// if its events carry bigger numbers.
constexpr std::size_t charge_event_fixed_bytes_typical = 16;
constexpr std::size_t varint_bytes_max = 10;  // a 64-bit value, 7 bits a byte

// Appends into a buffer it sizes ahead and fills through a cursor: a journal record of a thousand
// events is written without a capacity check per byte (the per-byte push_back was an eighth of the
// persistence writer's time under batches).
class Writer {
 public:
  explicit Writer(std::uint8_t tag, std::uint8_t version = version_1) {
    room(2);
    put(static_cast<char>(tag));
    put(static_cast<char>(version));
  }
  void u(std::uint64_t v) {
    room(varint_bytes_max);
    while (v >= 0x80) {
      put(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    put(static_cast<char>(v));
  }
  void i(std::int64_t v) { u((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63)); }
  void b(bool v) {
    room(1);
    put(v ? 1 : 0);
  }
  void s(std::string_view v) {
    u(v.size());
    append(v.data(), v.size());
  }
  void bytes(const std::uint8_t* data, std::size_t size) { append(reinterpret_cast<const char*>(data), size); }
  template <class E> void e(E v) { u(static_cast<std::uint64_t>(v)); }
  // Room for `bytes` more, so a long record grows its buffer once.
  void reserve(std::size_t bytes) { room(bytes); }
  std::string take() {
    out_.resize(size_);
    return std::move(out_);
  }

 private:
  // REQUIRES: room() for it first.
  void put(char c) { out_[size_++] = c; }
  void append(const char* data, std::size_t n) {
    if (n == 0) return;  // an empty view's data may be null, which memcpy must not see
    room(n);
    std::memcpy(out_.data() + size_, data, n);
    size_ += n;
  }
  void room(std::size_t n) {
    if (out_.size() - size_ < n) out_.resize(std::max(2 * out_.size(), size_ + n));
  }

  std::string out_;       // [0, size_) written; the rest room
  std::size_t size_ = 0;
};

class Reader {
 public:
  // Accepts versions 1 .. max_version of `tag`; version() tells which one this is.
  Reader(std::string_view in, std::uint8_t tag, std::uint8_t max_version = version_1) : in_(in) {
    ok_ = in_.size() >= 2 && static_cast<std::uint8_t>(in_[0]) == tag && static_cast<std::uint8_t>(in_[1]) >= 1 &&
          static_cast<std::uint8_t>(in_[1]) <= max_version;
    version_ = ok_ ? static_cast<std::uint8_t>(in_[1]) : 0;
    pos_ = 2;
  }
  std::uint8_t version() const { return version_; }
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
  std::string s() { return std::string(sv()); }
  // A view into the bytes being read.
  std::string_view sv() {
    const std::uint64_t n = u();
    if (!ok_ || n > in_.size() - pos_) {
      fail();
      return {};
    }
    const std::string_view out = in_.substr(pos_, n);
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
  // Marks the value malformed (a field decoded but holds a value its type forbids).
  void reject() { fail(); }
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
  std::uint8_t version_ = 0;
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

void put_hash(Writer& w, const TokenHash& h) { w.bytes(h.data(), h.size()); }
TokenHash get_hash(Reader& r) {
  TokenHash h{};
  r.bytes(h.data(), h.size());
  return h;
}
void put_role(Writer& w, Role role) { w.e(role); }
Role get_role(Reader& r) {
  const auto v = r.e<std::uint8_t>(4);
  if (v == 0) {
    r.reject();  // 0 means no role, which these fields never hold
    return Role::agent;
  }
  return static_cast<Role>(v);
}
void put_user_created(Writer& w, const UserCreated& x) {
  w.u(raw(x.user));
  w.s(x.email);
  w.s(x.name);
  put_hash(w, x.token_hash);
  w.i(x.at);
}
UserCreated get_user_created(Reader& r) {
  UserCreated x;
  x.user = UserId{r.u()};
  x.email = r.s();
  x.name = r.s();
  x.token_hash = get_hash(r);
  x.at = r.i();
  return x;
}
void put_customization(Writer& w, const Customization& c) {
  w.s(c.logo_url);
  w.s(c.contact_email);
  w.s(c.address);
  w.s(c.terms_of_service_url);
  w.s(c.privacy_policy_url);
}
Customization get_customization(Reader& r) {
  Customization c;
  c.logo_url = r.s();
  c.contact_email = r.s();
  c.address = r.s();
  c.terms_of_service_url = r.s();
  c.privacy_policy_url = r.s();
  return c;
}
void put_api_key(Writer& w, const ApiKey& k) {
  w.u(raw(k.id));
  w.s(k.name);
  w.s(k.hint);
  w.u(raw(k.created_by));
  w.i(k.created_at);
  put_hash(w, k.token_hash);
}
ApiKey get_api_key(Reader& r) {
  ApiKey k;
  k.id = KeyId{r.u()};
  k.name = r.s();
  k.hint = r.s();
  k.created_by = UserId{r.u()};
  k.created_at = r.i();
  k.token_hash = get_hash(r);
  return k;
}
void put_invitation(Writer& w, const Invitation& i) {
  w.u(raw(i.id));
  w.s(i.email);
  put_role(w, i.role);
  w.u(raw(i.invited_by));
  w.i(i.created_at);
  w.i(i.expires_at);
  put_hash(w, i.token_hash);
}
Invitation get_invitation(Reader& r) {
  Invitation i;
  i.id = InvitationId{r.u()};
  i.email = r.s();
  i.role = get_role(r);
  i.invited_by = UserId{r.u()};
  i.created_at = r.i();
  i.expires_at = r.i();
  i.token_hash = get_hash(r);
  return i;
}

void put_alert_config(Writer& w, const AlertConfig& c) {
  w.u(c.spend_percent_thresholds.size());
  for (const auto p : c.spend_percent_thresholds) w.u(p);
  put_opt_micros(w, c.low_balance_micros);
}
AlertConfig get_alert_config(Reader& r, std::size_t max_items) {
  AlertConfig c;
  const auto n = r.u();
  if (n > max_items) {
    r.reject();
    return c;
  }
  for (std::uint64_t i = 0; i < n && r.ok(); ++i) c.spend_percent_thresholds.push_back(r.e<std::uint16_t>(65535));
  c.low_balance_micros = get_opt_micros(r);
  return c;
}
void put_webhook(Writer& w, const Webhook& h) {
  w.u(raw(h.id));
  w.s(h.url);
  w.u(h.events);
  w.s(h.secret);
  w.i(h.created_at);
}
Webhook get_webhook(Reader& r) {
  Webhook h;
  h.id = WebhookId{r.u()};
  h.url = r.s();
  h.events = r.e<AlertTypeSet>(255);
  h.secret = r.s();
  h.created_at = r.i();
  return h;
}
void put_alert(Writer& w, const Alert& a) {
  w.u(a.id);
  w.e(a.type);
  w.u(raw(a.org));
  w.i(a.at);
  w.u(a.threshold_percent);
  w.i(a.cycle_spend_micros);
  put_opt_micros(w, a.limit_micros);
  w.i(a.balance_micros);
  w.i(a.low_balance_micros);
  w.i(a.amount_micros);
  w.u(raw(a.payment));
  w.s(a.reason);
}
Alert get_alert(Reader& r) {
  Alert a;
  a.id = r.u();
  a.type = r.e<AlertType>(alert_type_count - 1);
  a.org = OrgId{r.u()};
  a.at = r.i();
  a.threshold_percent = r.e<std::uint16_t>(65535);
  a.cycle_spend_micros = r.i();
  a.limit_micros = get_opt_micros(r);
  a.balance_micros = r.i();
  a.low_balance_micros = r.i();
  a.amount_micros = r.i();
  a.payment = PaymentId{r.u()};
  a.reason = r.s();
  return a;
}

struct RecordEncoder {
  std::string operator()(const UserCreated& x) const {
    Writer w(tag_user_created);
    put_user_created(w, x);
    return w.take();
  }
  std::string operator()(const CustomizationSet& x) const {
    Writer w(tag_customization_set);
    w.u(raw(x.org));
    w.s(x.name);
    put_customization(w, x.customization);
    return w.take();
  }
  std::string operator()(const ShowCreditsSet& x) const {
    Writer w(tag_show_credits_set);
    w.u(raw(x.org));
    w.b(x.enabled);
    return w.take();
  }
  std::string operator()(const ApiKeyCreated& x) const {
    Writer w(tag_api_key_created);
    w.u(raw(x.org));
    put_api_key(w, x.key);
    return w.take();
  }
  std::string operator()(const ApiKeyRevoked& x) const {
    Writer w(tag_api_key_revoked);
    w.u(raw(x.org));
    w.u(raw(x.key));
    put_hash(w, x.token_hash);
    return w.take();
  }
  std::string operator()(const InvitationCreated& x) const {
    Writer w(tag_invitation_created);
    w.u(raw(x.org));
    put_invitation(w, x.invitation);
    return w.take();
  }
  std::string operator()(const InvitationRevoked& x) const {
    Writer w(tag_invitation_revoked);
    w.u(raw(x.org));
    w.u(raw(x.invitation));
    put_hash(w, x.token_hash);
    return w.take();
  }
  std::string operator()(const InvitationAccepted& x) const {
    Writer w(tag_invitation_accepted);
    w.u(raw(x.org));
    w.u(raw(x.invitation));
    put_hash(w, x.token_hash);
    w.u(raw(x.user));
    put_role(w, x.role);
    w.i(x.at);
    w.b(x.new_user.has_value());
    if (x.new_user) put_user_created(w, *x.new_user);
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
    std::size_t strings = 0;
    for (const auto& e : x.events) strings += e.id.size() + e.type.size();
    w.reserve(strings + x.events.size() * charge_event_fixed_bytes_typical);
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
    Writer w(tag_pause_set, timed_version);
    w.u(raw(x.org));
    w.i(x.cycle);
    w.i(x.at);
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
    Writer w(tag_limit_set, timed_version);
    w.u(raw(x.org));
    put_opt_micros(w, x.limit_micros);
    w.i(x.at);
    return w.take();
  }
  std::string operator()(const AlertsSet& x) const {
    Writer w(tag_alerts_set);
    w.u(raw(x.org));
    put_alert_config(w, x.config);
    return w.take();
  }
  std::string operator()(const WebhookCreated& x) const {
    Writer w(tag_webhook_created);
    w.u(raw(x.org));
    put_webhook(w, x.webhook);
    return w.take();
  }
  std::string operator()(const WebhookDeleted& x) const {
    Writer w(tag_webhook_deleted);
    w.u(raw(x.org));
    w.u(raw(x.webhook));
    return w.take();
  }
  std::string operator()(const WebhookAttempted& x) const {
    Writer w(tag_webhook_attempted);
    w.u(x.delivery);
    w.u(raw(x.webhook));
    w.u(raw(x.org));
    w.u(x.alert);
    w.e(x.alert_type);
    w.u(x.attempt);
    w.b(x.succeeded);
    w.u(x.http_status);
    w.s(x.error);
    w.i(x.at);
    w.i(x.next_at);
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
  Reader r(bytes, tag, tag == tag_pause_set || tag == tag_limit_set ? timed_version : version_1);
  switch (tag) {
    case tag_user_created: return finish(r, get_user_created(r));
    case tag_customization_set: {
      CustomizationSet x;
      x.org = OrgId{r.u()};
      x.name = r.s();
      x.customization = get_customization(r);
      return finish(r, std::move(x));
    }
    case tag_show_credits_set: {
      ShowCreditsSet x;
      x.org = OrgId{r.u()};
      x.enabled = r.b();
      return finish(r, std::move(x));
    }
    case tag_api_key_created: {
      ApiKeyCreated x;
      x.org = OrgId{r.u()};
      x.key = get_api_key(r);
      return finish(r, std::move(x));
    }
    case tag_api_key_revoked: {
      ApiKeyRevoked x;
      x.org = OrgId{r.u()};
      x.key = KeyId{r.u()};
      x.token_hash = get_hash(r);
      return finish(r, std::move(x));
    }
    case tag_invitation_created: {
      InvitationCreated x;
      x.org = OrgId{r.u()};
      x.invitation = get_invitation(r);
      return finish(r, std::move(x));
    }
    case tag_invitation_revoked: {
      InvitationRevoked x;
      x.org = OrgId{r.u()};
      x.invitation = InvitationId{r.u()};
      x.token_hash = get_hash(r);
      return finish(r, std::move(x));
    }
    case tag_invitation_accepted: {
      InvitationAccepted x;
      x.org = OrgId{r.u()};
      x.invitation = InvitationId{r.u()};
      x.token_hash = get_hash(r);
      x.user = UserId{r.u()};
      x.role = get_role(r);
      x.at = r.i();
      if (r.b()) x.new_user = get_user_created(r);
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
      std::vector<ChargeEvent> events;
      events.reserve(n);
      for (std::uint64_t k = 0; k < n && r.ok(); ++k) {
        ChargeEvent e;
        e.id = r.sv();
        e.type = r.sv();
        e.quantity = r.u();
        e.cost_micros = r.i();
        e.occurred_at = r.i();
        events.push_back(std::move(e));
      }
      x.events = std::move(events);
      return finish(r, std::move(x));
    }
    case tag_pause_set: {
      PauseSet x;
      x.org = OrgId{r.u()};
      x.cycle = static_cast<Cycle>(r.i());
      if (r.version() >= timed_version) x.at = r.i();
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
      if (r.version() >= timed_version) x.at = r.i();
      return finish(r, std::move(x));
    }
    case tag_alerts_set: {
      AlertsSet x;
      x.org = OrgId{r.u()};
      x.config = get_alert_config(r, bytes.size());
      return finish(r, std::move(x));
    }
    case tag_webhook_created: {
      WebhookCreated x;
      x.org = OrgId{r.u()};
      x.webhook = get_webhook(r);
      return finish(r, std::move(x));
    }
    case tag_webhook_deleted: {
      WebhookDeleted x;
      x.org = OrgId{r.u()};
      x.webhook = WebhookId{r.u()};
      return finish(r, std::move(x));
    }
    case tag_webhook_attempted: {
      WebhookAttempted x;
      x.delivery = r.u();
      x.webhook = WebhookId{r.u()};
      x.org = OrgId{r.u()};
      x.alert = r.u();
      x.alert_type = r.e<AlertType>(alert_type_count - 1);
      x.attempt = r.e<std::uint32_t>(UINT32_MAX);
      x.succeeded = r.b();
      x.http_status = r.e<std::uint32_t>(999);
      x.error = r.s();
      x.at = r.i();
      x.next_at = r.i();
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

std::string encode(const OrgState& o, std::uint64_t as_of) {
  Writer w(tag_org_state, org_state_version);
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
  put_customization(w, o.customization);
  w.b(o.custom_domain.has_value());
  if (o.custom_domain) {
    w.s(o.custom_domain->hostname);
    w.b(o.custom_domain->verified);
  }
  w.u(o.api_keys.size());
  for (const auto& k : o.api_keys) put_api_key(w, k);
  w.u(o.invitations.size());
  for (const auto& i : o.invitations) put_invitation(w, i);
  put_alert_config(w, o.alerts);
  w.u(o.webhooks.size());
  for (const auto& h : o.webhooks) put_webhook(w, h);
  w.u(as_of);
  return w.take();
}

std::optional<OrgState> decode_org(std::string_view bytes, std::uint64_t* as_of) {
  Reader r(bytes, tag_org_state, org_state_version);
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
  if (r.version() >= 2) {
    o.customization = get_customization(r);
    if (r.b()) {
      CustomDomain d;
      d.hostname = r.s();
      d.verified = r.b();
      o.custom_domain = std::move(d);
    }
    const auto keys = r.u();
    if (keys > bytes.size()) return std::nullopt;
    for (std::uint64_t k = 0; k < keys && r.ok(); ++k) o.api_keys.push_back(get_api_key(r));
    const auto invitations = r.u();
    if (invitations > bytes.size()) return std::nullopt;
    for (std::uint64_t k = 0; k < invitations && r.ok(); ++k) o.invitations.push_back(get_invitation(r));
  }
  if (r.version() >= 3) {
    o.alerts = get_alert_config(r, bytes.size());
    const auto hooks = r.u();
    if (hooks > bytes.size()) return std::nullopt;
    for (std::uint64_t k = 0; k < hooks && r.ok(); ++k) o.webhooks.push_back(get_webhook(r));
  }
  // Versions before 4 were written only by whole checkpoints, which the checkpoint mark covers.
  const std::uint64_t snapshot_seq = r.version() >= 4 ? r.u() : 0;
  if (!r.done()) return std::nullopt;
  if (as_of) *as_of = snapshot_seq;
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

// Fixed layout (not tagged): the first rows of this table predate the codec's tags.
std::string encode(const TokenRow& t) {
  std::string out;
  out.push_back(static_cast<char>(t.kind));
  put_u64_be(out, t.owner);
  if (t.kind == TokenKind::user) return out;
  put_u64_be(out, t.item);
  if (t.kind == TokenKind::invitation) out.push_back(t.used ? 1 : 0);
  return out;
}

std::optional<TokenRow> decode_token_row(std::string_view bytes) {
  if (bytes.size() < 9) return std::nullopt;
  TokenRow t;
  t.kind = static_cast<TokenKind>(bytes[0]);
  t.owner = get_u64_be(bytes.substr(1));
  switch (t.kind) {
    case TokenKind::user:
      if (bytes.size() != 9) return std::nullopt;
      return t;
    case TokenKind::api_key:
      if (bytes.size() != 17) return std::nullopt;
      t.item = get_u64_be(bytes.substr(9));
      return t;
    case TokenKind::invitation:
      if (bytes.size() != 18 || static_cast<std::uint8_t>(bytes[17]) > 1) return std::nullopt;
      t.item = get_u64_be(bytes.substr(9));
      t.used = bytes[17] == 1;
      return t;
  }
  return std::nullopt;
}

std::string encode(const Bucket& b) {
  Writer w(tag_bucket);
  w.u(b.count);
  w.u(b.quantity);
  w.i(b.micros);
  w.u(b.last_seq);
  return w.take();
}

std::optional<Bucket> decode_bucket(std::string_view bytes) {
  Reader r(bytes, tag_bucket);
  Bucket b;
  b.count = r.u();
  b.quantity = r.u();
  b.micros = r.i();
  b.last_seq = r.u();
  if (!r.done()) return std::nullopt;
  return b;
}

std::string encode(const EventIdRow& row) {
  CANOPY_ASSERT(row.at.has_value());  // every row written now says when
  std::string out;
  out.reserve(event_id_row_bytes);
  put_u64_be(out, row.seq);
  put_u64_be(out, raw(row.payer));
  put_u64_be(out, static_cast<std::uint64_t>(*row.at));
  return out;
}

std::optional<EventIdRow> decode_event_id_row(std::string_view bytes) {
  if (bytes.size() != 16 && bytes.size() != event_id_row_bytes) return std::nullopt;
  EventIdRow row;
  row.seq = get_u64_be(bytes);
  row.payer = OrgId{get_u64_be(bytes.substr(8))};
  if (bytes.size() == event_id_row_bytes) row.at = static_cast<Timestamp>(get_u64_be(bytes.substr(16)));
  return row;
}

std::string encode(const OutboxRow& o) {
  Writer w(tag_outbox_row);
  w.u(raw(o.webhook));
  put_alert(w, o.alert);
  w.u(o.attempts);
  w.i(o.next_at);
  w.u(o.order);
  return w.take();
}

std::optional<OutboxRow> decode_outbox_row(std::string_view bytes) {
  Reader r(bytes, tag_outbox_row);
  OutboxRow o;
  o.webhook = WebhookId{r.u()};
  o.alert = get_alert(r);
  o.attempts = r.e<std::uint32_t>(UINT32_MAX);
  o.next_at = r.i();
  o.order = r.u();
  if (!r.done()) return std::nullopt;
  return o;
}

std::string encode(const DeliveryRow& d) {
  Writer w(tag_delivery_row);
  w.u(d.alert);
  w.e(d.alert_type);
  w.u(d.attempt);
  w.b(d.succeeded);
  w.u(d.http_status);
  w.s(d.error);
  w.i(d.at);
  w.i(d.next_at);
  return w.take();
}

std::optional<DeliveryRow> decode_delivery_row(std::string_view bytes) {
  Reader r(bytes, tag_delivery_row);
  DeliveryRow d;
  d.alert = r.u();
  d.alert_type = r.e<AlertType>(alert_type_count - 1);
  d.attempt = r.e<std::uint32_t>(UINT32_MAX);
  d.succeeded = r.b();
  d.http_status = r.e<std::uint32_t>(999);
  d.error = r.s();
  d.at = r.i();
  d.next_at = r.i();
  if (!r.done()) return std::nullopt;
  return d;
}

}  // namespace canopy::persistence
