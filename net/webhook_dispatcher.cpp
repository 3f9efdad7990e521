#include "net/webhook_dispatcher.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <unordered_set>

#include "actors/messages.hpp"
#include "config/limits.hpp"
#include "net/json_out.hpp"
#include "net/views.hpp"
#include "net/webhook_target.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"

namespace canopy::net {
namespace {

using namespace canopy::domain;
using tick_atom = caf::atom_constant<caf::atom("tick")>;

struct Due {
  std::uint64_t delivery = 0;
  persistence::OutboxRow row;
};

struct Attempt {
  bool succeeded = false;
  std::uint32_t http_status = 0;
  std::string error;
};

std::size_t discard(char*, std::size_t size, std::size_t count, void*) { return size * count; }

Attempt post(const std::string& url, const WebhookTarget* pinned, const std::string& body, const std::string& signature) {
  CURL* curl = curl_easy_init();
  if (!curl) return {false, 0, "curl_easy_init failed"};
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, ("Canopy-Signature: " + signature).c_str());
  headers = curl_slist_append(headers, "User-Agent: Canopy-Webhooks/1");
  curl_slist* resolve = nullptr;
  if (pinned) {
    // Connect to the address that was checked, not whatever the name resolves to a moment later.
    resolve = curl_slist_append(resolve, (pinned->host + ":" + std::to_string(pinned->port) + ":" + pinned->addresses.front()).c_str());
    curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
  }
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, static_cast<long>(limits::webhook_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_slist_free_all(resolve);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) return {false, 0, error[0] ? error : curl_easy_strerror(rc)};
  Attempt a;
  a.http_status = static_cast<std::uint32_t>(status);
  a.succeeded = status >= 200 && status < 300;
  if (!a.succeeded) a.error = "the receiver answered HTTP " + std::to_string(status);
  return a;
}

struct DispatcherState {
  actors::Services* services = nullptr;
  std::unordered_set<std::uint64_t> in_flight;  // attempted, its record not yet committed
  static inline const char* name = "canopy.webhooks";
};

using Dispatcher = caf::stateful_actor<DispatcherState>;

std::vector<Due> due_rows(Dispatcher* self, Timestamp now) {
  std::vector<Due> due;
  const auto& st = self->state;
  st.services->store.scan(persistence::Table::webhook_outbox, {}, {}, [&](std::string_view key, std::string_view value) {
    const std::uint64_t delivery = persistence::get_u64_be(key);
    auto row = persistence::decode_outbox_row(value);
    if (row && row->next_at <= now && !st.in_flight.count(delivery)) due.push_back(Due{delivery, std::move(*row)});
    return true;
  });
  std::sort(due.begin(), due.end(), [](const Due& a, const Due& b) {
    return a.row.next_at != b.row.next_at ? a.row.next_at < b.row.next_at : a.row.order < b.row.order;
  });
  if (due.size() > limits::webhook_batch_max) due.resize(limits::webhook_batch_max);
  return due;
}

// Makes one attempt and returns its record.
WebhookAttempted attempt(Dispatcher* self, const Due& due, Timestamp now) {
  auto& services = *self->state.services;
  const Alert& alert = due.row.alert;
  WebhookAttempted r{due.delivery, due.row.webhook, alert.org, alert.id, alert.type, due.row.attempts + 1,
                     false, 0, {}, now, 0};
  const auto org = services.directory.org(alert.org);
  const Webhook* hook = nullptr;
  if (org) {
    for (const auto& h : org->webhooks) {
      if (h.id == due.row.webhook) hook = &h;
    }
  }
  if (!hook) {
    r.error = "the webhook was deleted";
    return r;  // finished: nowhere to deliver
  }
  JsonWriter w;
  write_alert(w, alert, false);
  const std::string body = w.take();
  const std::string signature = webhook_signature(hook->secret, now, body);
  Attempt a;
  auto target = resolve_webhook_target(hook->url, services.options.allow_private_webhooks);
  if (auto* error = std::get_if<std::string>(&target)) {
    a.error = *error;
  } else {
    a = post(hook->url, &std::get<WebhookTarget>(target), body, signature);
  }
  r.succeeded = a.succeeded;
  r.http_status = a.http_status;
  r.error = std::move(a.error);
  if (!r.succeeded) {
    const Timestamp next = now + webhook_backoff_seconds(r.attempt);
    const Timestamp give_up = alert.at + std::chrono::duration_cast<std::chrono::seconds>(limits::webhook_retry_for).count();
    r.next_at = next <= give_up ? next : 0;
  }
  return r;
}

void deliver_due(Dispatcher* self) {
  auto& st = self->state;
  const Timestamp now = st.services->clock.now();
  for (const Due& due : due_rows(self, now)) {
    auto record = std::make_shared<const Record>(attempt(self, due, now));
    st.in_flight.insert(due.delivery);
    const std::uint64_t delivery = due.delivery;
    self->request(st.services->writer, limits::writer_reply_timeout, actors::append_atom::value, actors::RecordPtr(record))
        .then([self, delivery](std::uint64_t) { self->state.in_flight.erase(delivery); },
              [self](caf::error& err) {
                // Shutting down (the writer has stopped) or storage hung: the attempt is not on record,
                // so the delivery stays due and is made again (at least once). Stop delivering.
                std::fprintf(stderr, "canopy: the writer did not confirm a webhook attempt: %s\n",
                             self->system().render(err).c_str());
                self->quit();
              });
  }
}

caf::behavior dispatcher(Dispatcher* self, actors::Services* services) {
  self->state.services = services;
  self->send(self, tick_atom::value);
  return {
      [=](tick_atom) {
        deliver_due(self);
        self->delayed_send(self, limits::webhook_poll_interval, tick_atom::value);
      },
  };
}

}  // namespace

caf::actor spawn_webhook_dispatcher(actors::Services& services) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  return services.system.spawn<caf::detached>(dispatcher, &services);
}

}  // namespace canopy::net
