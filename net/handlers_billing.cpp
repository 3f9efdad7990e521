// Billing: the billing view, consolidated billing, spending limits, subscriptions, payment method,
// auto-recharge, top-ups, grants, transfers and payment history (CONTRACT.md "Billing").
#include "config/limits.hpp"
#include "domain/rules.hpp"
#include "domain/time.hpp"
#include "domain/validation.hpp"
#include "net/handler_support.hpp"
#include "net/views.hpp"
#include "persistence/keys.hpp"

namespace canopy::net {
namespace {

using namespace canopy::domain;
using actors::CommandResult;

// Answers with the billing view of the org as the command left it.
std::function<void(const CommandResult&)> answer_billing(Ctx& ctx, const OrgView& view) {
  return [respond = ctx.respond, &services = ctx.services, access = view.access, now = ctx.now,
          ancestors = std::vector<actors::OrgPtr>(view.lineage.begin() + 1, view.lineage.end())](const CommandResult& r) {
    std::vector<actors::OrgPtr> lineage{r.org};
    lineage.insert(lineage.end(), ancestors.begin(), ancestors.end());
    JsonWriter w;
    write_billing(w, services, lineage, access, now);
    respond(json_response(200, w.take()));
  };
}

persistence::PaymentRow payment_row(const Record& record) {
  if (const auto* p = std::get_if<PaymentRecorded>(&record)) {
    return {p->payment, p->kind, p->status, p->amount_micros, p->at, OrgId::none, p->reason};
  }
  const auto& t = std::get<TransferRecorded>(record);
  return {t.out_payment, PaymentKind::transfer_out, PaymentStatus::succeeded, t.amount_micros, t.at, t.to, {}};
}

// Answers 201 with the payment, or 402 payment_declined when the provider declined it.
std::function<void(const CommandResult&)> answer_payment(Ctx& ctx) {
  return [respond = ctx.respond, hide = ctx.hide_money](const CommandResult& r) {
    const auto row = payment_row(*r.record);
    if (row.status == PaymentStatus::failed) {
      return respond(error_response(Error{Errc::payment_declined, row.reason.empty() ? "The payment was declined" : row.reason,
                                          {{"payment_id", to_string(row.id)}}}));
    }
    JsonWriter w;
    write_payment(w, row, hide);
    respond(json_response(201, w.take()));
  };
}

std::optional<std::string> idempotency_key(Ctx& ctx) {
  if (!ctx.request.has_idempotency_key) {
    ctx.fail(Error{Errc::invalid_request, "Send an Idempotency-Key header so a retry cannot pay twice",
                   {{"header", "Idempotency-Key"}}});
    return std::nullopt;
  }
  if (auto why = check_idempotency_key(ctx.request.idempotency_key)) {
    ctx.fail(Error{Errc::invalid_request, "Idempotency-Key " + *why, {{"header", "Idempotency-Key"}}});
    return std::nullopt;
  }
  return ctx.request.idempotency_key;
}

void get_billing(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::read_billing);
  if (!view) return;
  JsonWriter w;
  write_billing(w, ctx.services, view->lineage, view->access, ctx.now);
  ctx.ok(200, w.take());
}

void put_consolidated(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::govern_billing);
  if (!view) return;
  constexpr FieldSpec specs[] = {{"enabled", JsonType::boolean, true}};
  FieldValue v[1];
  if (!read_body(ctx, specs, v)) return;
  send_command(ctx, view->org().id, actors::SetConsolidated{v[0].boolean}, answer_billing(ctx, *view));
}

void put_spending_limit(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::govern_billing);
  if (!view) return;
  constexpr FieldSpec specs[] = {{"monthly_limit_micros", JsonType::nullable_integer, true}};
  FieldValue v[1];
  if (!read_body(ctx, specs, v)) return;
  std::optional<Micros> limit;
  if (!v[0].is_null) limit = v[0].integer;
  send_command(ctx, view->org().id, actors::SetLimit{limit}, answer_billing(ctx, *view));
}

void put_subscription(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_billing);
  if (!view) return;
  constexpr FieldSpec specs[] = {{"plan", JsonType::string, true}};
  FieldValue v[1];
  if (!read_body(ctx, specs, v)) return;
  const auto plan = parse_plan(v[0].text);
  if (!plan) return ctx.fail(invalid_field("plan", "plan must be one of free, pay_as_you_go, business, enterprise"));
  send_command(ctx, view->org().id, actors::SetSubscription{*plan}, answer_billing(ctx, *view));
}

void delete_subscription(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_billing);
  if (!view) return;
  send_command(ctx, view->org().id, actors::SetSubscription{std::nullopt}, answer_billing(ctx, *view));
}

void put_payment_method(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_billing);
  if (!view) return;
  constexpr FieldSpec specs[] = {{"brand", JsonType::string, true},
                                 {"last4", JsonType::string, true},
                                 {"exp_month", JsonType::integer, true},
                                 {"exp_year", JsonType::integer, true}};
  FieldValue v[4];
  if (auto err = parse_object(ctx.request.body, specs, v)) {
    // Name the rule, not just the field, when someone tries to send a card number.
    for (const auto& [k, value] : err->details) {
      const auto* field = std::get_if<std::string>(&value);
      if (k == "field" && field && (*field == "number" || *field == "card_number" || *field == "cvc" || *field == "pan")) {
        err->message = "Card numbers are never accepted: send brand, last4, exp_month and exp_year only";
      }
    }
    return ctx.fail(*err);
  }
  auto method = payment_method_from(v[0].text, v[1].text, v[2].integer, v[3].integer);
  if (auto* err = std::get_if<Error>(&method)) return ctx.fail(*err);
  send_command(ctx, view->org().id, actors::SetPaymentMethod{std::get<PaymentMethod>(std::move(method))},
               answer_billing(ctx, *view));
}

void put_auto_recharge(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_billing);
  if (!view) return;
  constexpr FieldSpec specs[] = {{"enabled", JsonType::boolean, true},
                                 {"threshold_micros", JsonType::integer, true},
                                 {"amount_micros", JsonType::integer, true}};
  FieldValue v[3];
  if (!read_body(ctx, specs, v)) return;
  send_command(ctx, view->org().id, actors::SetAutoRecharge{AutoRecharge{v[0].boolean, v[1].integer, v[2].integer}},
               answer_billing(ctx, *view));
}

void post_top_up(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_billing);
  if (!view) return;
  const auto key = idempotency_key(ctx);
  if (!key) return;
  constexpr FieldSpec specs[] = {{"amount_micros", JsonType::integer, true}};
  FieldValue v[1];
  if (!read_body(ctx, specs, v)) return;
  send_command(ctx, view->org().id, actors::TopUp{v[0].integer, *key}, answer_payment(ctx));
}

void post_grant(Ctx& ctx) {
  if (!require_operator(ctx)) return;
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_billing);
  if (!view) return;
  constexpr FieldSpec specs[] = {{"amount_micros", JsonType::integer, true}, {"reason", JsonType::string, true}};
  FieldValue v[2];
  if (!read_body(ctx, specs, v)) return;
  // Grants are free money: the reason is the audit trail.
  if (auto why = check_name(v[1].text)) return ctx.fail(invalid_field("reason", "reason " + *why));
  send_command(ctx, view->org().id, actors::Grant{v[0].integer, v[1].text}, answer_payment(ctx));
}

void post_transfer(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_billing);
  if (!view) return;
  const auto key = idempotency_key(ctx);
  if (!key) return;
  constexpr FieldSpec specs[] = {{"to_org_id", JsonType::string, true}, {"amount_micros", JsonType::integer, true}};
  FieldValue v[2];
  if (!read_body(ctx, specs, v)) return;
  const auto to = parse_org_id(v[0].text);
  if (!to) return ctx.fail(invalid_field("to_org_id", "to_org_id must be an organization id (org_…)"));
  send_command(ctx, view->org().id, actors::Transfer{*to, v[1].integer, *key},
               [respond = ctx.respond, hide = ctx.hide_money](const CommandResult& r) {
                 const auto& t = std::get<TransferRecorded>(*r.record);
                 JsonWriter w;
                 w.begin_object().key("id").string(to_string(t.out_payment));
                 w.key("from_org_id").string(to_string(t.from)).key("to_org_id").string(to_string(t.to));
                 if (!hide) w.key("amount_micros").integer(t.amount_micros);
                 w.key("created_at").string(format_rfc3339(t.at));
                 w.end_object();
                 respond(json_response(201, w.take()));
               });
}

// Reads one page of an org's payment history, newest first, from the store.
void write_payments_page(const actors::Services& services, OrgId org, std::size_t limit, const std::string& from,
                         bool hide, const Respond& respond) {
  const std::string prefix = persistence::u64_key(raw(org));
  JsonWriter w;
  w.begin_object().key("data").begin_array();
  std::size_t count = 0;
  std::string next;
  const auto status = services.store.scan(
      persistence::Table::payments, prefix, from.empty() ? prefix : prefix + from,
      [&](std::string_view key, std::string_view value) {
        if (count == limit) {
          next = domain::to_hex(reinterpret_cast<const std::uint8_t*>(key.data() + 8), 8);
          return false;
        }
        if (auto row = persistence::decode_payment(value)) write_payment(w, *row, hide);
        ++count;
        return true;
      });
  if (!status.ok()) return respond(error_response(Error{Errc::unavailable, "Payment history is unavailable: " + status.message}));
  w.end_array().key("next_cursor");
  if (next.empty()) {
    w.null();
  } else {
    w.string(next);
  }
  w.end_object();
  respond(json_response(200, w.take()));
}

void list_payments(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::read_billing);
  if (!view) return;
  const auto limit = page_limit(ctx);
  if (!limit) return;
  std::string from;
  if (auto cursor = query_param(ctx.request.query, "cursor")) {
    // The cursor is the hex of the next row's key suffix.
    if (cursor->size() != 16 || cursor->find_first_not_of("0123456789abcdef") != std::string::npos) {
      return ctx.fail(invalid_field("cursor", "cursor is not one this list gave out"));
    }
    from = persistence::u64_key(std::stoull(*cursor, nullptr, 16));
  }
  // The org first rolls into the current cycle (durably), so the history lists this cycle's credits.
  const OrgId org = view->org().id;
  send_command(ctx, org, actors::Touch{},
               [&services = ctx.services, org, limit = *limit, from, hide = ctx.hide_money,
                respond = ctx.respond](const CommandResult&) {
                 write_payments_page(services, org, limit, from, hide, respond);
               });
}

}  // namespace

void add_billing_routes(std::vector<Route>& routes) {
  routes.push_back({Method::get, "/v1/orgs/{}/billing", get_billing});
  routes.push_back({Method::put, "/v1/orgs/{}/billing/consolidated", put_consolidated});
  routes.push_back({Method::put, "/v1/orgs/{}/billing/spending-limit", put_spending_limit});
  routes.push_back({Method::put, "/v1/orgs/{}/billing/subscription", put_subscription});
  routes.push_back({Method::del, "/v1/orgs/{}/billing/subscription", delete_subscription});
  routes.push_back({Method::put, "/v1/orgs/{}/billing/payment-method", put_payment_method});
  routes.push_back({Method::put, "/v1/orgs/{}/billing/auto-recharge", put_auto_recharge});
  routes.push_back({Method::post, "/v1/orgs/{}/billing/top-ups", post_top_up});
  routes.push_back({Method::post, "/v1/orgs/{}/billing/grants", post_grant});
  routes.push_back({Method::post, "/v1/orgs/{}/billing/transfers", post_transfer});
  routes.push_back({Method::get, "/v1/orgs/{}/billing/payments", list_payments});
}

}  // namespace canopy::net
