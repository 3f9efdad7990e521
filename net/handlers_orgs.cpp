// Users, organizations and the switcher: POST /v1/users, POST /v1/orgs, GET /v1/me,
// GET/PATCH /v1/orgs/{id}, POST/GET /v1/orgs/{id}/sub-orgs.
#include <algorithm>

#include "domain/validation.hpp"
#include "net/handler_support.hpp"
#include "net/views.hpp"

namespace canopy::net {
namespace {

using namespace canopy::domain;
using actors::CommandResult;

void create_user(Ctx& ctx) {
  if (!require_operator(ctx)) return;
  constexpr FieldSpec specs[] = {{"email", JsonType::string, true}, {"name", JsonType::string, true}};
  FieldValue v[2];
  if (!read_body(ctx, specs, v)) return;
  if (auto why = check_email(v[0].text)) return ctx.fail(invalid_field("email", "email " + *why));
  if (auto why = check_name(v[1].text)) return ctx.fail(invalid_field("name", "name " + *why));
  Respond respond = ctx.respond;
  caf::anon_send(ctx.services.registry, actors::user_atom::value,
                 actors::CreateUser{v[0].text, v[1].text, [respond, &services = ctx.services](auto result) {
                   if (auto* err = std::get_if<Error>(&result)) return respond(error_response(*err));
                   const auto& [id, token] = std::get<std::pair<UserId, std::string>>(result);
                   const auto user = services.directory.user(id);
                   JsonWriter w;
                   w.begin_object().key("id").string(to_string(id)).key("email").string(user->email);
                   w.key("name").string(user->name).key("token").string(token).end_object();
                   respond(json_response(201, w.take()));
                 }});
}

void create_root(Ctx& ctx) {
  if (!require_operator(ctx)) return;
  constexpr FieldSpec specs[] = {{"name", JsonType::string, true},
                                 {"plan", JsonType::string, true},
                                 {"owner_user_id", JsonType::string, true}};
  FieldValue v[3];
  if (!read_body(ctx, specs, v)) return;
  if (auto why = check_name(v[0].text)) return ctx.fail(invalid_field("name", "name " + *why));
  const auto plan = parse_plan(v[1].text);
  if (!plan) return ctx.fail(invalid_field("plan", "plan must be one of free, pay_as_you_go, business, enterprise"));
  const auto owner = parse_user_id(v[2].text);
  if (!owner) return ctx.fail(invalid_field("owner_user_id", "owner_user_id must be a user id (usr_…)"));
  Respond respond = ctx.respond;
  auto& services = ctx.services;
  const Timestamp now = ctx.now;
  caf::anon_send(services.registry, actors::root_atom::value,
                 actors::CreateRoot{v[0].text, *plan, *owner, [respond, &services, now](CommandResult r) {
                   if (!r.ok) return respond(error_response(r.error));
                   JsonWriter w;
                   Access operator_access;
                   operator_access.is_operator = true;
                   write_org(w, services, {r.created}, operator_access, now);
                   respond(json_response(201, w.take()));
                 }});
}

void me(Ctx& ctx) {
  const auto user_id = require_user(ctx);
  if (!user_id) return;
  const auto user = ctx.services.directory.user(*user_id);
  if (!user) return ctx.fail(Error{Errc::unauthenticated, "The token is not valid"});
  JsonWriter w;
  write_me(w, ctx.services, *user);
  ctx.ok(200, w.take());
}

void get_org(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::read_org);
  if (!view) return;
  JsonWriter w;
  write_org(w, ctx.services, view->lineage, view->access, ctx.now);
  ctx.ok(200, w.take());
}

// Answers with the org as the command left it, shaped for this caller.
std::function<void(const CommandResult&)> answer_org(Ctx& ctx, const OrgView& view, unsigned status) {
  return [respond = ctx.respond, &services = ctx.services, access = view.access, now = ctx.now,
          ancestors = std::vector<actors::OrgPtr>(view.lineage.begin() + 1, view.lineage.end()),
          status](const CommandResult& r) {
    std::vector<actors::OrgPtr> lineage{r.org};
    lineage.insert(lineage.end(), ancestors.begin(), ancestors.end());
    JsonWriter w;
    write_org(w, services, lineage, access, now);
    respond(json_response(status, w.take()));
  };
}

void patch_org(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_org);
  if (!view) return;
  constexpr FieldSpec specs[] = {{"name", JsonType::string, false}};
  FieldValue v[1];
  if (!read_body(ctx, specs, v)) return;
  if (!v[0].present) return ctx.fail(invalid("Nothing to change: send {\"name\": …}"));
  if (auto why = check_name(v[0].text)) return ctx.fail(invalid_field("name", "name " + *why));
  send_command(ctx, view->org().id, actors::Rename{v[0].text}, answer_org(ctx, *view, 200));
}

void create_sub_org(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::create_sub_orgs);
  if (!view) return;
  constexpr FieldSpec specs[] = {{"name", JsonType::string, true}};
  FieldValue v[1];
  if (!read_body(ctx, specs, v)) return;
  if (auto why = check_name(v[0].text)) return ctx.fail(invalid_field("name", "name " + *why));
  send_command(ctx, view->org().id, actors::CreateSubOrg{v[0].text, ctx.services.options.max_depth},
               [respond = ctx.respond, &services = ctx.services, lineage = view->lineage, access = view->access,
                now = ctx.now, hide = ctx.hide_money](const CommandResult& r) {
                 std::vector<actors::OrgPtr> child_lineage{r.created, r.org};
                 child_lineage.insert(child_lineage.end(), lineage.begin() + 1, lineage.end());
                 Access child_access = access;  // the creator reaches the child as an admin from above
                 if (child_access.direct_role == Role::admin) child_access.ancestor_admin = true;
                 child_access.direct_role.reset();
                 JsonWriter w;
                 write_org(w, services, child_lineage, child_access, now, hide);
                 respond(json_response(201, w.take()));
               });
}

void list_sub_orgs(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::read_org);
  if (!view) return;
  const auto limit = page_limit(ctx);
  if (!limit) return;
  auto children = ctx.services.directory.children(view->org().id);
  // Ordered by name, then id (a stable total order for paging). The cursor is the last row's id.
  std::sort(children.begin(), children.end(), [](const actors::OrgPtr& a, const actors::OrgPtr& b) {
    return a->name != b->name ? a->name < b->name : raw(a->id) < raw(b->id);
  });
  std::size_t start = 0;
  if (auto cursor = query_param(ctx.request.query, "cursor")) {
    const auto after = parse_org_id(*cursor);
    auto it = after ? std::find_if(children.begin(), children.end(), [&](const auto& c) { return c->id == *after; })
                    : children.end();
    if (it == children.end()) return ctx.fail(invalid_field("cursor", "cursor is not one this list gave out"));
    start = static_cast<std::size_t>(it - children.begin()) + 1;
  }
  JsonWriter w;
  w.begin_object().key("data").begin_array();
  std::size_t end = std::min(children.size(), start + *limit);
  for (std::size_t i = start; i < end; ++i) {
    std::vector<actors::OrgPtr> lineage{children[i]};
    lineage.insert(lineage.end(), view->lineage.begin(), view->lineage.end());
    write_sub_org_row(w, ctx.services, lineage, ctx.services.directory.access(*ctx.principal, lineage), ctx.now,
                      ctx.hide_money);
  }
  w.end_array().key("next_cursor");
  if (end < children.size()) {
    w.string(to_string(children[end - 1]->id));
  } else {
    w.null();
  }
  w.end_object();
  ctx.ok(200, w.take());
}

}  // namespace

void add_org_routes(std::vector<Route>& routes) {
  routes.push_back({Method::post, "/v1/users", create_user});
  routes.push_back({Method::post, "/v1/orgs", create_root});
  routes.push_back({Method::get, "/v1/me", me});
  routes.push_back({Method::get, "/v1/orgs/{}", get_org});
  routes.push_back({Method::patch, "/v1/orgs/{}", patch_org});
  routes.push_back({Method::post, "/v1/orgs/{}/sub-orgs", create_sub_org});
  routes.push_back({Method::get, "/v1/orgs/{}/sub-orgs", list_sub_orgs});
}

}  // namespace canopy::net
