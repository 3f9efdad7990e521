// What most handlers do first: find the org named in the path, check the caller may act on it
// (404 for those who may not know it exists, 403 for members lacking the permission), read the body,
// and hand a command to the org's actor.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "actors/messages.hpp"
#include "domain/access.hpp"
#include "net/json_in.hpp"
#include "net/router.hpp"

namespace canopy::net {

struct OrgView {
  std::vector<actors::OrgPtr> lineage;  // the org, then its ancestors
  domain::Access access;
  const domain::OrgState& org() const { return *lineage.front(); }
};

// On failure it has answered (404 or 403) and returns nullopt.
std::optional<OrgView> authorize(Ctx& ctx, std::string_view org_id_text, domain::Permission permission);

// The signed-in user, or a 403 (operator tokens and API keys are not users).
std::optional<domain::UserId> require_user(Ctx& ctx);
bool require_operator(Ctx& ctx);

// Parses the JSON body against `specs`; on failure it has answered 400 and returns false.
bool read_body(Ctx& ctx, std::span<const FieldSpec> specs, std::span<FieldValue> values);

// Sends `command` to the org's actor. `done` runs on the actor's thread with the result; errors
// (result.ok == false) are answered by this function and `done` is not called.
void send_command(Ctx& ctx, domain::OrgId org, actors::Command command,
                  std::function<void(const actors::CommandResult&)> done);
// The same from outside a handler's call (a lookup's thread): what it needs of the Ctx, by value.
void send_command(actors::Services& services, const Respond& respond, bool hide_money, domain::OrgId org,
                  actors::Command command, std::function<void(const actors::CommandResult&)> done);

// The `limit` query parameter (default and maximum from limits.hpp); on a bad one it has answered 400.
std::optional<std::size_t> page_limit(Ctx& ctx);

}  // namespace canopy::net
