#include "actors/registry.hpp"

#include <unordered_set>

#include "actors/messages.hpp"
#include "actors/services.hpp"
#include "config/limits.hpp"
#include "domain/apply.hpp"
#include "domain/keyed_hash.hpp"
#include "domain/validation.hpp"

namespace canopy::actors {
namespace {

using namespace canopy::domain;

struct RegistryState {
  Services* services = nullptr;
  std::unordered_set<std::string, domain::KeyedHash, std::equal_to<>> emails_in_flight;
  std::unordered_set<UserId> owners_in_flight;  // a root being created for this owner
  static constexpr const char* name = "canopy.registry";
};

using Registry = caf::stateful_actor<RegistryState>;

template <class F>
void journal(Registry* self, RecordPtr record, F then) {
  self->request(self->state.services->writer, limits::writer_reply_timeout, append_atom::value, std::move(record))
      .then([then = std::move(then)](std::uint64_t seq) mutable { then(seq); },
            [self](caf::error& err) {
              std::fprintf(stderr, "canopy: the persistence writer did not confirm a commit: %s\n",
                           self->system().render(err).c_str());
              std::abort();
            });
}

void create_user(Registry* self, CreateUser& request) {
  auto& st = self->state;
  const std::string email = normalize_email(request.email);
  if (st.emails_in_flight.count(email) || st.services->directory.user_by_email(email)) {
    request.reply(Error{Errc::email_taken, "A user with this email already exists", {{"field", "email"}}});
    return;
  }
  st.emails_in_flight.insert(email);
  const std::string token = make_token(user_token_prefix);
  UserCreated created{UserId{random_id()}, email, std::move(request.name), hash_token(token), st.services->clock.now()};
  auto record = std::make_shared<const Record>(created);
  journal(self, record, [self, created, token, reply = std::move(request.reply)](std::uint64_t) {
    self->state.emails_in_flight.erase(created.email);
    self->state.services->directory.publish_user(
        UserInfo{created.user, created.email, created.name, created.at, OrgId::none}, created.token_hash);
    reply(std::pair<UserId, std::string>{created.user, token});
  });
}

void create_root(Registry* self, CreateRoot& request) {
  auto& st = self->state;
  auto& directory = st.services->directory;
  const auto owner = directory.user(request.owner);
  if (!owner) {
    CommandResult r;
    r.ok = false;
    r.error = Error{Errc::invalid_request, "owner_user_id does not name a user", {{"field", "owner_user_id"}}};
    request.reply(std::move(r));
    return;
  }
  if (st.owners_in_flight.count(request.owner)) {
    CommandResult r;
    r.ok = false;
    r.error = Error{Errc::conflict, "An organization is already being created for this owner; retry"};
    request.reply(std::move(r));
    return;
  }
  OrgCreated created;
  created.org = OrgId{random_id()};
  created.name = std::move(request.name);
  created.subscription = request.plan;
  created.owner = request.owner;
  created.at = st.services->clock.now();
  created.cycle = cycle_of(created.at);
  // The free monthly allowance goes to exactly one org per owning user: the first root they own.
  created.free_credits_recipient = owner->free_credits_org == OrgId::none;
  if (created.free_credits_recipient) {
    created.free_credits_micros = st.services->options.free_credits_micros;
    created.free_credits_payment = PaymentId{random_id()};
  }
  st.owners_in_flight.insert(request.owner);
  auto record = std::make_shared<const Record>(created);
  journal(self, record, [self, record, created, reply = std::move(request.reply)](std::uint64_t) {
    auto& directory_ = self->state.services->directory;
    self->state.owners_in_flight.erase(created.owner);
    auto org = std::make_shared<const OrgState>(make_org(created));
    directory_.publish(org);
    if (created.free_credits_recipient) directory_.set_free_credits_org(created.owner, created.org);
    CommandResult r;
    r.org = org;
    r.created = org;
    r.record = record;
    reply(std::move(r));
  });
}

caf::behavior registry(Registry* self, Services* services) {
  self->state.services = services;
  return {
      [=](user_atom, CreateUser& request) { create_user(self, request); },
      [=](root_atom, CreateRoot& request) { create_root(self, request); },
      // Reserve: a request, answered true when the email was free.
      [=](email_atom, reserve_atom, const std::string& email) -> bool {
        auto& st = self->state;
        if (st.emails_in_flight.count(email) || st.services->directory.user_by_email(email)) return false;
        st.emails_in_flight.insert(email);
        return true;
      },
      // Release: a one-way message, no answer (an answer would land in the sender's mailbox unasked).
      [=](email_atom, release_atom, const std::string& email) { self->state.emails_in_flight.erase(email); },
  };
}

}  // namespace

caf::actor spawn_registry(Services& services) { return services.system.spawn(registry, &services); }

}  // namespace canopy::actors
