#include "actors/runtime.hpp"

#include "actors/cycle_watcher.hpp"

#include "actors/messages.hpp"
#include "actors/registry.hpp"
#include "actors/scheduler_policy.hpp"
#include "actors/writer.hpp"
#include "config/limits.hpp"
#include "persistence/keys.hpp"
#include "persistence/recovery.hpp"

namespace canopy::actors {

using namespace canopy::domain;

namespace {

// The operator token: configured (env or file) wins; else the hash kept from an earlier start; else
// a new one, whose hash is stored and whose text is returned once for printing.
persistence::Status operator_token_hash(persistence::Store& store, const config::Options& options, TokenHash& hash,
                                        std::string& generated) {
  if (!options.operator_token.empty()) {
    hash = hash_token(options.operator_token);
    return {};
  }
  std::string stored;
  auto s = store.get(persistence::Table::meta, persistence::meta_operator_token_hash, stored);
  if (s.ok() && stored.size() == hash.size()) {
    std::copy(stored.begin(), stored.end(), hash.begin());
    return {};
  }
  if (!s.ok() && !s.is_not_found()) return s;
  generated = make_token("co_");
  hash = hash_token(generated);
  persistence::WriteOp op{persistence::Table::meta, std::string(persistence::meta_operator_token_hash),
                          std::string(hash.begin(), hash.end())};
  return store.commit(std::span<const persistence::WriteOp>(&op, 1));
}

Timestamp manual_clock_start(const persistence::Store& store) {
  std::string stored;
  if (store.get(persistence::Table::meta, persistence::meta_manual_clock, stored).ok()) {
    return static_cast<Timestamp>(persistence::get_u64_be(stored));
  }
  return Clock(false).now();
}

}  // namespace

std::unique_ptr<Runtime> Runtime::start(const config::Options& options, std::string& error, std::string& generated_token) {
  persistence::Status status;
  auto store = persistence::open_lmdb_store(options.data_dir, persistence::LmdbOptions{}, status);
  if (!store) {
    error = "cannot open data folder " + options.data_dir + ": " + status.message;
    return nullptr;
  }
  return start(options, std::move(store), error, generated_token);
}

std::unique_ptr<Runtime> Runtime::start(const config::Options& options, std::unique_ptr<persistence::Store> store,
                                        std::string& error, std::string& generated_token) {
  std::unique_ptr<Runtime> rt(new Runtime());
  persistence::Status status;
  rt->store_ = std::move(store);
  persistence::RecoveryResult recovered;
  if (status = persistence::recover(*rt->store_, recovered); !status.ok()) {
    error = "recovery failed: " + status.message;
    return nullptr;
  }
  rt->recovered_records_ = recovered.replayed_records;
  TokenHash op_hash{};
  if (status = operator_token_hash(*rt->store_, options, op_hash, generated_token); !status.ok()) {
    error = "cannot store the operator token: " + status.message;
    return nullptr;
  }

  rt->caf_config_ = std::make_unique<caf::actor_system_config>();
  if (options.scheduler_policy == "stealing") {
    rt->caf_config_->set("scheduler.policy", caf::atom("stealing"));
    rt->caf_config_->set("scheduler.max-threads", static_cast<std::size_t>(options.actor_threads));
  } else {
    use_next_slot_scheduler(*rt->caf_config_, options.actor_threads);
  }
  rt->caf_config_->set("logger.verbosity", caf::atom("quiet"));
  rt->system_ = std::make_unique<caf::actor_system>(*rt->caf_config_);

  rt->payments_ = std::make_unique<BuiltinPaymentProvider>();
  rt->services_ = std::make_unique<Services>(*rt->system_, options, *rt->store_, *rt->payments_);
  Services& services = *rt->services_;
  if (options.clock == config::ClockKind::manual) services.clock.advance_to(manual_clock_start(*rt->store_));
  services.directory.attach(&services);
  services.directory.set_operator_token_hash(op_hash);
  if (status = services.directory.load(*rt->store_); !status.ok()) {
    error = "cannot load organizations: " + status.message;
    return nullptr;
  }
  services.writer = spawn_writer(*rt->system_, *rt->store_, recovered.last_seq,
                                 WriterConfig{options.commit_window, options.checkpoint_interval, &services.alert_listener,
                                              &services.clock, domain::Timestamp{options.idempotency_retention_days} * domain::seconds_per_day},
                                 services.writer_stats);
  services.registry = spawn_registry(services);
  services.background.push_back(spawn_cycle_watcher(services));
  return rt;
}

void Runtime::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  {
    caf::scoped_actor self{*system_};
    self->request(services_->writer, limits::writer_reply_timeout, sync_atom::value)
        .receive([](std::uint64_t) {},
                 [](caf::error&) { std::fprintf(stderr, "canopy: final checkpoint did not complete\n"); });
  }
  for (auto& actor : services_->background) caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  services_->background.clear();
  services_->directory.stop_actors();
  caf::anon_send_exit(services_->registry, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(services_->writer, caf::exit_reason::user_shutdown);
  services_->registry = nullptr;
  services_->writer = nullptr;
}

Runtime::~Runtime() {
  if (services_ && services_->writer) shutdown();
  // Every actor has been told to exit, but may still be handling what was in its mailbox before
  // (the writer a checkpoint tick, which reads the clock in Services): the services go only once
  // all of them are done. The system would wait for them on destruction anyway; waiting first
  // just moves that wait ahead of freeing what they use.
  if (system_) system_->await_all_actors_done();
  services_.reset();  // the handles it holds are of terminated actors
  system_.reset();    // joins the scheduler
}

}  // namespace canopy::actors
