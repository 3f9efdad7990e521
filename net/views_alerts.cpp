// How alerts, alert settings, webhooks and delivery attempts read on the wire.
#include "net/views.hpp"

namespace canopy::net {

using namespace canopy::domain;

namespace {
inline constexpr std::string_view delivery_prefix = "dlv_";
}  // namespace

void write_alert(JsonWriter& w, const Alert& a, bool hide) {
  w.begin_object();
  w.key("id").string(alert_id_text(a.id));
  w.key("type").string(name_of(a.type));
  w.key("org_id").string(to_string(a.org));
  w.key("created_at").string(format_rfc3339(a.at));
  w.key("data").begin_object();
  switch (a.type) {
    case AlertType::spend_threshold_crossed:
      w.key("threshold_percent").unsigned_integer(a.threshold_percent);
      if (!hide) {
        w.key("cycle_spend_micros").integer(a.cycle_spend_micros);
        w.key("monthly_spending_limit_micros").optional_integer(a.limit_micros);
      }
      break;
    case AlertType::balance_low:
      if (!hide) {
        w.key("available_balance_micros").integer(a.balance_micros);
        w.key("low_balance_micros").integer(a.low_balance_micros);
      }
      break;
    case AlertType::org_paused:
      if (!hide) {
        w.key("cycle_spend_micros").integer(a.cycle_spend_micros);
        w.key("monthly_spending_limit_micros").optional_integer(a.limit_micros);
      }
      break;
    case AlertType::org_resumed:
    case AlertType::org_detached: break;
    case AlertType::auto_recharge_succeeded:
    case AlertType::auto_recharge_failed:
      w.key("payment_id").string(to_string(a.payment));
      if (!hide) w.key("amount_micros").integer(a.amount_micros);
      if (a.type == AlertType::auto_recharge_failed) w.key("reason").string(a.reason);
      break;
  }
  w.end_object();
  w.end_object();
}

void write_alert_config(JsonWriter& w, const AlertConfig& c) {
  w.begin_object().key("spend_percent_thresholds").begin_array();
  for (const auto p : c.spend_percent_thresholds) w.unsigned_integer(p);
  w.end_array().key("low_balance_micros").optional_integer(c.low_balance_micros).end_object();
}

void write_webhook(JsonWriter& w, const Webhook& h) {
  w.begin_object();
  w.key("id").string(to_string(h.id));
  w.key("url").string(h.url);
  w.key("events").begin_array();
  for (std::size_t i = 0; i < alert_type_count; ++i) {
    if (h.events & bit(static_cast<AlertType>(i))) w.string(alert_type_names[i]);
  }
  w.end_array();
  w.key("created_at").string(format_rfc3339(h.created_at));
  w.end_object();
}

void write_delivery(JsonWriter& w, std::uint64_t seq, const persistence::DeliveryRow& d) {
  w.begin_object();
  w.key("id").string(format_id(delivery_prefix, seq));
  w.key("alert_id").string(alert_id_text(d.alert));
  w.key("type").string(name_of(d.alert_type));
  w.key("attempt").unsigned_integer(d.attempt);
  w.key("status").string(d.succeeded ? "succeeded" : "failed");
  w.key("http_status");
  if (d.http_status == 0) {
    w.null();
  } else {
    w.unsigned_integer(d.http_status);
  }
  w.key("error");
  if (d.error.empty()) {
    w.null();
  } else {
    w.string(d.error);
  }
  w.key("attempted_at").string(format_rfc3339(d.at));
  w.key("next_attempt_at");
  if (d.next_at == 0) {
    w.null();
  } else {
    w.string(format_rfc3339(d.next_at));
  }
  w.end_object();
}

}  // namespace canopy::net
