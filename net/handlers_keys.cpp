// Org API keys: POST/GET /v1/orgs/{id}/api-keys, DELETE /v1/orgs/{id}/api-keys/{key}.
// A key (`ck_…`) may write usage on its org and every descendant, nothing else (domain/access.hpp).
#include <algorithm>

#include "domain/validation.hpp"
#include "net/handler_support.hpp"
#include "net/views.hpp"

namespace canopy::net {
namespace {

using namespace canopy::domain;
using actors::CommandResult;

void create_key(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_api_keys);
  if (!view) return;
  constexpr FieldSpec specs[] = {{"name", JsonType::string, true}};
  FieldValue v[1];
  if (!read_body(ctx, specs, v)) return;
  if (auto why = check_name(v[0].text)) return ctx.fail(invalid_field("name", "name " + *why));
  const std::string secret = make_token(api_key_prefix);
  const UserId creator = ctx.principal->kind == actors::Principal::Kind::user ? ctx.principal->user : UserId::none;
  actors::CreateApiKey command{v[0].text, secret.substr(secret.size() - 4), creator, hash_token(secret)};
  send_command(ctx, view->org().id, std::move(command), [respond = ctx.respond, secret](const CommandResult& r) {
    const auto& key = std::get<ApiKeyCreated>(*r.record).key;
    JsonWriter w;
    w.begin_object();
    w.key("id").string(to_string(key.id));
    w.key("name").string(key.name);
    w.key("key").string(secret);  // the only time the secret is shown
    w.key("org_id").string(to_string(r.org->id));
    w.key("created_at").string(format_rfc3339(key.created_at));
    w.end_object();
    respond(json_response(201, w.take()));
  });
}

// Oldest first; the cursor is the last row's id.
void list_keys(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_api_keys);
  if (!view) return;
  const auto limit = page_limit(ctx);
  if (!limit) return;
  const auto& keys = view->org().api_keys;
  std::size_t start = 0;
  if (auto cursor = query_param(ctx.request.query, "cursor")) {
    const auto after = parse_key_id(*cursor);
    auto it = after ? std::find_if(keys.begin(), keys.end(), [&](const ApiKey& k) { return k.id == *after; }) : keys.end();
    if (it == keys.end()) return ctx.fail(invalid_field("cursor", "cursor is not one this list gave out (or its key is gone)"));
    start = static_cast<std::size_t>(it - keys.begin()) + 1;
  }
  const std::size_t end = std::min(keys.size(), start + *limit);
  JsonWriter w;
  w.begin_object().key("data").begin_array();
  for (std::size_t i = start; i < end; ++i) write_api_key(w, keys[i]);
  w.end_array().key("next_cursor");
  if (end < keys.size()) {
    w.string(to_string(keys[end - 1].id));
  } else {
    w.null();
  }
  w.end_object();
  ctx.ok(200, w.take());
}

void revoke_key(Ctx& ctx) {
  const auto view = authorize(ctx, ctx.params[0], Permission::manage_api_keys);
  if (!view) return;
  const auto key = parse_key_id(ctx.params[1]);
  if (!key) return ctx.fail(Error{Errc::not_found, "No API key with this id in this organization"});
  send_command(ctx, view->org().id, actors::RevokeApiKey{*key},
               [respond = ctx.respond](const CommandResult&) { respond(no_content()); });
}

}  // namespace

void add_key_routes(std::vector<Route>& routes) {
  routes.push_back({Method::post, "/v1/orgs/{}/api-keys", create_key});
  routes.push_back({Method::get, "/v1/orgs/{}/api-keys", list_keys});
  routes.push_back({Method::del, "/v1/orgs/{}/api-keys/{}", revoke_key});
}

}  // namespace canopy::net
