#include "net/handler_support.hpp"

#include <charconv>

#include "config/limits.hpp"
#include "net/views.hpp"

namespace canopy::net {

using domain::Errc;
using domain::Error;

std::optional<OrgView> authorize(Ctx& ctx, std::string_view org_id_text, domain::Permission permission) {
  const auto id = domain::parse_org_id(org_id_text);
  OrgView view;
  if (id) view.lineage = ctx.services.directory.lineage(*id);
  if (!view.lineage.empty()) view.access = ctx.services.directory.access(*ctx.principal, view.lineage);
  if (view.lineage.empty() || !view.access.visible()) {
    ctx.fail(Error{Errc::not_found, "Organization not found", {{"org_id", std::string(org_id_text)}}});
    return std::nullopt;
  }
  ctx.hide_money = hides_money(view.org(), view.access);
  if (!domain::allows(view.access, permission, view.org().is_root())) {
    ctx.fail(Error{Errc::forbidden, "Your role does not allow this on this organization"});
    return std::nullopt;
  }
  return view;
}

std::optional<domain::UserId> require_user(Ctx& ctx) {
  if (ctx.principal->kind != actors::Principal::Kind::user) {
    ctx.fail(Error{Errc::forbidden, "This endpoint needs a user token"});
    return std::nullopt;
  }
  return ctx.principal->user;
}

bool require_operator(Ctx& ctx) {
  if (ctx.principal->kind != actors::Principal::Kind::operator_token) {
    ctx.fail(Error{Errc::forbidden, "Only the operator may do this"});
    return false;
  }
  return true;
}

bool read_body(Ctx& ctx, std::span<const FieldSpec> specs, std::span<FieldValue> values) {
  if (auto err = parse_object(ctx.request.body, specs, values)) {
    ctx.fail(*err);
    return false;
  }
  return true;
}

void send_command(Ctx& ctx, domain::OrgId org, actors::Command command,
                  std::function<void(const actors::CommandResult&)> done) {
  send_command(ctx.services, ctx.respond, ctx.hide_money, org, std::move(command), std::move(done));
}

void send_command(actors::Services& services, const Respond& respond, bool hide_money, domain::OrgId org,
                  actors::Command command, std::function<void(const actors::CommandResult&)> done) {
  caf::actor actor = services.directory.actor_of(org);
  if (!actor) return respond(error_response(Error{Errc::not_found, "Organization not found"}));
  caf::anon_send(actor, actors::command_atom::value,
                 actors::CommandRequest{std::move(command), [respond, hide = hide_money, done = std::move(done)](actors::CommandResult r) {
                                          if (!r.ok) return respond(error_response(hide ? without_money(r.error) : r.error));
                                          done(r);
                                        }});
}

std::optional<std::size_t> page_limit(Ctx& ctx) {
  const auto text = query_param(ctx.request.query, "limit");
  if (!text) return limits::page_size_default;
  std::size_t n = 0;
  const auto r = std::from_chars(text->data(), text->data() + text->size(), n);
  if (r.ec != std::errc{} || r.ptr != text->data() + text->size() || n < 1 || n > limits::page_size_max) {
    ctx.fail(domain::invalid_field("limit", "limit must be from 1 to " + std::to_string(limits::page_size_max)));
    return std::nullopt;
  }
  return n;
}

}  // namespace canopy::net
