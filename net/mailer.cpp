#include "net/mailer.hpp"

#include <curl/curl.h>

#include <cstdio>

#include "config/limits.hpp"

namespace canopy::net {
namespace {

caf::behavior mailer(caf::event_based_actor* self, const config::Options* options, actors::MailStats* stats) {
  return {
      [=](mail_atom, OutgoingMail& mail, unsigned attempt) {
        const DeliveryResult result =
            options->smtp_url.empty() ? write_eml(options->outbox_dir, mail) : send_smtp(options->smtp_url, mail);
        if (result.ok) {
          stats->delivered.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        if (attempt + 1 >= limits::mail_attempts_max) {
          stats->failed.fetch_add(1, std::memory_order_relaxed);
          std::fprintf(stderr, "canopy: gave up delivering mail to %s after %u attempts: %s\n", mail.to.c_str(),
                       attempt + 1, result.error.c_str());
          return;
        }
        stats->retried.fetch_add(1, std::memory_order_relaxed);
        const auto delay = limits::mail_retry_first * (1u << attempt);
        std::fprintf(stderr, "canopy: mail to %s failed (%s); retrying in %lld ms\n", mail.to.c_str(),
                     result.error.c_str(), static_cast<long long>(delay.count()));
        self->delayed_send(self, delay, mail_atom::value, std::move(mail), attempt + 1);
      },
  };
}

}  // namespace

caf::actor spawn_mailer(caf::actor_system& system, const config::Options& options, actors::MailStats& stats) {
  // libcurl's global state, set up before any thread uses it (reference-counted, never torn down:
  // the process ends soon after the last mail).
  curl_global_init(CURL_GLOBAL_DEFAULT);
  return system.spawn<caf::detached>(mailer, &options, &stats);
}

}  // namespace canopy::net
