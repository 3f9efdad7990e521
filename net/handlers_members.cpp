// Members and invitations: GET /v1/orgs/{id}/members, POST /v1/orgs/{id}/invitations,
// DELETE /v1/orgs/{id}/invitations/{inv}, POST /v1/invitations/{token}/accept,
// PATCH/DELETE /v1/orgs/{id}/members/{user}, PUT/DELETE /v1/orgs/{id}/my-role.
//
// Who may do what is decided by domain/members.hpp inside the org's actor; handlers parse, check the
// permission to reach the endpoint at all, and shape the answer.
#include <algorithm>

#include "config/limits.hpp"
#include "domain/invitation_email.hpp"
#include "domain/members.hpp"
#include "domain/validation.hpp"
#include "net/handler_support.hpp"
#include "net/mailer.hpp"
#include "net/views.hpp"

namespace canopy::net {
namespace {

using namespace canopy::domain;
using actors::CommandResult;

std::optional<Role> read_role(Ctx& ctx, const FieldValue& value) {
  const auto role = parse_role(value.text);
  if (!role) ctx.fail(invalid_field("role", "role must be one of admin, developer, manager, agent"));
  return role;
}

std::optional<UserId> path_user(Ctx& ctx, const std::string& text) {
  const auto user = parse_user_id(text);
  if (!user) ctx.fail(Error{Errc::not_found, "No member with this user id in this organization", {{"user_id", text}}});
  return user;
}

// Members by user id, then pending invitations oldest first. The cursor is the last row's
// user_id (usr_…) or invitation_id (inv_…).
void list_members(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::read_org);
  if (!view) return;
  const auto limit = page_limit(ctx);
  if (!limit) return;
  const OrgState& org = view->org();
  std::vector<const Invitation*> invited;
  for (const auto& inv : org.invitations) {
    if (state_at(inv, ctx.now) == InvitationState::pending) invited.push_back(&inv);
  }
  const std::size_t total = org.members.size() + invited.size();
  std::size_t start = 0;
  if (auto cursor = query_param(ctx.request.query, "cursor")) {
    std::optional<std::size_t> at;
    if (const auto user = parse_user_id(*cursor)) {
      for (std::size_t i = 0; i < org.members.size(); ++i) {
        if (org.members[i].user == *user) at = i;
      }
    } else if (const auto inv = parse_invitation_id(*cursor)) {
      for (std::size_t i = 0; i < invited.size(); ++i) {
        if (invited[i]->id == *inv) at = org.members.size() + i;
      }
    }
    if (!at) return ctx.fail(invalid_field("cursor", "cursor is not one this list gave out (or its row is gone)"));
    start = *at + 1;
  }
  const std::size_t end = std::min(total, start + *limit);
  JsonWriter w;
  w.begin_object().key("data").begin_array();
  for (std::size_t i = start; i < end; ++i) {
    if (i < org.members.size()) {
      write_member_row(w, ctx.services, org.members[i]);
    } else {
      write_invited_row(w, ctx.services, *invited[i - org.members.size()]);
    }
  }
  w.end_array().key("next_cursor");
  if (end < total) {
    const std::size_t last = end - 1;
    w.string(last < org.members.size() ? to_string(org.members[last].user)
                                       : to_string(invited[last - org.members.size()]->id));
  } else {
    w.null();
  }
  w.end_object();
  ctx.ok(200, w.take());
}

void invite(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_members);
  if (!view) return;
  constexpr FieldSpec specs[] = {{"email", JsonType::string, true}, {"role", JsonType::string, true}};
  FieldValue v[2];
  if (!read_body(ctx, specs, v)) return;
  if (auto why = check_email(v[0].text)) return ctx.fail(invalid_field("email", "email " + *why));
  const auto role = read_role(ctx, v[1]);
  if (!role) return;
  const std::string email = normalize_email(v[0].text);
  const std::string token = make_token(invitation_token_prefix);
  const UserId inviter = ctx.principal->kind == actors::Principal::Kind::user ? ctx.principal->user : UserId::none;
  actors::Invite command{email, *role, view->access, inviter, hash_token(token), ctx.services.options.invitation_expiry_hours};
  send_command(ctx, view->org().id, std::move(command),
               [respond = ctx.respond, &services = ctx.services, token, inviter, now = ctx.now](const CommandResult& r) {
                 const auto& inv = std::get<InvitationCreated>(*r.record).invitation;
                 const auto user = services.directory.user(inviter);
                 const InvitationEmail mail = compose_invitation_email(
                     *r.org, inv, token, user ? user->name : "", services.options.public_url, services.options.mail_from);
                 const std::string id = to_string(inv.id);
                 caf::anon_send(services.mailer, mail_atom::value,
                                OutgoingMail{mail.from_address, mail.to, format_message(mail, now, id), id}, 0u);
                 JsonWriter w;
                 w.begin_object();
                 w.key("id").string(id);
                 w.key("org_id").string(to_string(r.org->id));
                 w.key("role").string(name_of(inv.role));
                 w.key("status").string("pending");
                 w.key("expires_at").string(format_rfc3339(inv.expires_at));
                 w.key("link").string(mail.link);
                 w.key("email").begin_object();
                 w.key("from").string(mail.from()).key("to").string(mail.to).key("subject").string(mail.subject);
                 w.key("html").string(mail.html).end_object();
                 w.end_object();
                 respond(json_response(201, w.take()));
               });
}

void revoke_invitation(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_members);
  if (!view) return;
  const auto id = parse_invitation_id(ctx.params[1]);
  if (!id) return ctx.fail(Error{Errc::not_found, "No pending invitation with this id in this organization"});
  send_command(ctx, view->org().id, actors::RevokeInvitation{*id},
               [respond = ctx.respond](const CommandResult&) { respond(no_content()); });
}

// Anyone holding the link may accept. With a user token it joins that user; without one, the user
// with the invited email, or a new user (whose token is returned, once).
void accept_invitation(Ctx& ctx) {
  std::optional<UserId> signed_in;
  if (!ctx.request.authorization.empty()) {
    const auto principal = authenticate(ctx.services, ctx.request.authorization);
    if (!principal) return ctx.fail(Error{Errc::unauthenticated, "The token is not valid"});
    if (principal->kind != actors::Principal::Kind::user) {
      return ctx.fail(Error{Errc::forbidden, "Only a user can accept an invitation: send a user token, or none"});
    }
    signed_in = principal->user;
  }
  std::string name;
  if (!ctx.request.body.empty()) {
    constexpr FieldSpec specs[] = {{"name", JsonType::string, false}};
    FieldValue v[1];
    if (!read_body(ctx, specs, v)) return;
    if (v[0].present) {
      if (auto why = check_name(v[0].text)) return ctx.fail(invalid_field("name", "name " + *why));
      name = v[0].text;
    }
  }
  const std::string& token = ctx.params[0];
  const auto ref = token.starts_with(invitation_token_prefix) ? ctx.services.directory.invitation(hash_token(token))
                                                               : std::nullopt;
  if (!ref) return ctx.fail(Error{Errc::not_found, "Invitation not found"});
  const std::string user_token = make_token(user_token_prefix);
  send_command(ctx, ref->org, actors::AcceptInvitation{hash_token(token), signed_in, name, hash_token(user_token)},
               [respond = ctx.respond, user_token](const CommandResult& r) {
                 const auto& a = std::get<InvitationAccepted>(*r.record);
                 JsonWriter w;
                 w.begin_object();
                 w.key("user_id").string(to_string(a.user));
                 w.key("org_id").string(to_string(a.org));
                 w.key("role").string(name_of(a.role));
                 if (a.new_user) w.key("token").string(user_token);
                 w.end_object();
                 respond(json_response(200, w.take()));
               });
}

// Answers with the member's row as the command left it.
std::function<void(const CommandResult&)> answer_member(Ctx& ctx, UserId user) {
  return [respond = ctx.respond, &services = ctx.services, user](const CommandResult& r) {
    const Member* m = r.org->find_member(user);
    CANOPY_ASSERT(m != nullptr);
    JsonWriter w;
    write_member_row(w, services, *m);
    respond(json_response(200, w.take()));
  };
}

void patch_member(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_members);
  if (!view) return;
  const auto user = path_user(ctx, ctx.params[1]);
  if (!user) return;
  constexpr FieldSpec specs[] = {{"role", JsonType::string, true}};
  FieldValue v[1];
  if (!read_body(ctx, specs, v)) return;
  const auto role = read_role(ctx, v[0]);
  if (!role) return;
  send_command(ctx, view->org().id, actors::ChangeMember{*user, *role, view->access}, answer_member(ctx, *user));
}

void delete_member(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_members);
  if (!view) return;
  const auto user = path_user(ctx, ctx.params[1]);
  if (!user) return;
  send_command(ctx, view->org().id, actors::ChangeMember{*user, std::nullopt, view->access},
               [respond = ctx.respond](const CommandResult&) { respond(no_content()); });
}

void put_my_role(Ctx& ctx) {
  const auto user = require_user(ctx);
  if (!user) return;
  const auto view = authorize(ctx, ctx.params[0], Permission::read_org);
  if (!view) return;
  constexpr FieldSpec specs[] = {{"role", JsonType::string, true}};
  FieldValue v[1];
  if (!read_body(ctx, specs, v)) return;
  const auto role = read_role(ctx, v[0]);
  if (!role) return;
  send_command(ctx, view->org().id, actors::SetMyRole{*user, *role, view->access}, answer_member(ctx, *user));
}

void leave(Ctx& ctx) {
  const auto user = require_user(ctx);
  if (!user) return;
  const auto view = authorize(ctx, ctx.params[0], Permission::read_org);
  if (!view) return;
  send_command(ctx, view->org().id, actors::Leave{*user},
               [respond = ctx.respond](const CommandResult&) { respond(no_content()); });
}

}  // namespace

void add_member_routes(std::vector<Route>& routes) {
  routes.push_back({Method::get, "/v1/orgs/{}/members", list_members});
  routes.push_back({Method::patch, "/v1/orgs/{}/members/{}", patch_member});
  routes.push_back({Method::del, "/v1/orgs/{}/members/{}", delete_member});
  routes.push_back({Method::post, "/v1/orgs/{}/invitations", invite});
  routes.push_back({Method::del, "/v1/orgs/{}/invitations/{}", revoke_invitation});
  routes.push_back({Method::post, "/v1/invitations/{}/accept", accept_invitation, false});
  routes.push_back({Method::put, "/v1/orgs/{}/my-role", put_my_role});
  routes.push_back({Method::del, "/v1/orgs/{}/my-role", leave});
}

}  // namespace canopy::net
