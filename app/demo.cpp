#include "app/demo.hpp"

#include <future>
#include <random>

#include "actors/messages.hpp"
#include "config/limits.hpp"
#include "domain/rules.hpp"

namespace canopy::app {
namespace {

using namespace canopy::domain;
using namespace canopy::actors;

// A usage event every `demo_tick`, for ever; each is a real charge through the chain.
constexpr std::chrono::milliseconds demo_tick{500};
constexpr const char* demo_email = "demo@agency.example";
constexpr Micros demo_grant_micros = 100'000'000;
constexpr std::array<const char*, 3> demo_clients = {"Acme Dental", "Bloom Florists", "Copper Cafe"};
constexpr std::array<const char*, 4> demo_event_types = {"assistants.reply", "inbox.message", "broadcasts.sms",
                                                         "workflows.run"};

using tick_atom = caf::atom_constant<caf::atom("demotick")>;

caf::behavior trickle(caf::event_based_actor* self, Services* services, std::vector<OrgId> orgs) {
  self->send(self, tick_atom::value);
  auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
  auto counter = std::make_shared<std::uint64_t>(0);
  return {[=](tick_atom) {
    const OrgId org = orgs[(*rng)() % orgs.size()];
    ChargeEvent event;
    event.id = "demo-" + std::to_string((*rng)()) + "-" + std::to_string(++*counter);
    event.type = std::string_view(demo_event_types[(*rng)() % demo_event_types.size()]);
    event.quantity = 1;
    event.cost_micros = static_cast<Micros>(1000 + (*rng)() % 20000);
    event.occurred_at = services->clock.now();
    auto events = std::make_shared<const std::vector<ChargeEvent>>(1, std::move(event));
    const auto modules = effective_modules(raw_lineage(services->directory.lineage(org)));
    caf::anon_send(services->directory.actor_of(org), charge_atom::value,
                   ChargeRequest{events, services->clock.now(), modules, [](std::vector<ChargeOutcome>) {}});
    self->delayed_send(self, demo_tick, tick_atom::value);
  }};
}

// Runs `send` with a reply callback and waits for the answer (start-up only).
template <class T, class Send>
T ask(Send send) {
  auto promise = std::make_shared<std::promise<T>>();
  auto future = promise->get_future();
  send([promise](T value) { promise->set_value(std::move(value)); });
  return future.get();
}

}  // namespace

std::string start_demo(Services& services) {
  std::vector<OrgId> clients;
  std::string line;
  if (services.directory.org_count() == 0) {
    auto user = ask<std::variant<Error, std::pair<UserId, std::string>>>([&](auto reply) {
      caf::anon_send(services.registry, user_atom::value, CreateUser{demo_email, "Demo Agency Admin", reply});
    });
    if (auto* err = std::get_if<Error>(&user)) return "demo: " + err->message;
    const auto [user_id, token] = std::get<std::pair<UserId, std::string>>(user);
    auto root = ask<CommandResult>([&](auto reply) {
      caf::anon_send(services.registry, root_atom::value, CreateRoot{"Demo Agency", Plan::business, user_id, reply});
    });
    if (!root.ok) return "demo: " + root.error.message;
    const OrgId agency = root.created->id;
    auto command = [&](OrgId org, Command c) {
      return ask<CommandResult>([&](auto reply) {
        caf::anon_send(services.directory.actor_of(org), command_atom::value, CommandRequest{std::move(c), reply});
      });
    };
    command(agency, Grant{demo_grant_micros, "demo"});
    Micros limit = 2'000'000;
    for (const char* name : demo_clients) {
      auto created = command(agency, CreateSubOrg{name, services.options.max_depth});
      if (!created.ok) return "demo: " + created.error.message;
      command(created.created->id, SetLimit{limit});
      limit *= 2;
      clients.push_back(created.created->id);
    }
    line = "demo: seeded 'Demo Agency' with " + std::to_string(clients.size()) +
           " clients; sign in as its admin with token " + token;
  } else {
    // Only ever the demo agency's own orgs: --demo on a data folder with real tenants charges none of them.
    if (const auto demo_user = services.directory.user_by_email(demo_email)) {
      for (const OrgId org : services.directory.memberships(*demo_user)) {
        for (const auto& sub : services.directory.descendants(org)) clients.push_back(sub->id);
      }
    }
    line = clients.empty() ? "demo: the data folder has organizations but no demo agency; nothing seeded"
                           : "demo: trickling usage into the demo agency seeded earlier";
  }
  // Registered so that shutdown stops it: an actor that never quits would keep the system alive.
  if (!clients.empty()) services.background.push_back(services.system.spawn(trickle, &services, clients));
  return line;
}

}  // namespace canopy::app
