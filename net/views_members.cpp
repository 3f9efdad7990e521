// How members, invitations, API keys and customization read on the wire. None of these carry money,
// so the show-credits rule (views.hpp) has nothing to hide here.
#include "net/views.hpp"

namespace canopy::net {

using namespace canopy::domain;

namespace {

void optional_text(JsonWriter& w, std::string_view key, const std::string& value) {
  w.key(key);
  if (value.empty()) {
    w.null();
  } else {
    w.string(value);
  }
}

}  // namespace

void write_member_row(JsonWriter& w, const actors::Services& services, const Member& member) {
  const auto user = services.directory.user(member.user);
  w.begin_object();
  w.key("user_id").string(to_string(member.user));
  w.key("name").string(user ? user->name : "");
  w.key("email").string(user ? user->email : "");
  w.key("role").string(name_of(member.role));
  w.key("status").string("active");
  w.end_object();
}

void write_invited_row(JsonWriter& w, const actors::Services& services, const Invitation& invitation) {
  const auto user_id = services.directory.user_by_email(invitation.email);
  const auto user = user_id ? services.directory.user(*user_id) : std::nullopt;
  w.begin_object();
  w.key("user_id");
  if (user) {
    w.string(to_string(user->id));
  } else {
    w.null();
  }
  w.key("name");
  if (user) {
    w.string(user->name);
  } else {
    w.null();
  }
  w.key("email").string(invitation.email);
  w.key("role").string(name_of(invitation.role));
  w.key("status").string("invited");
  w.key("invitation_id").string(to_string(invitation.id));
  w.key("expires_at").string(format_rfc3339(invitation.expires_at));
  w.end_object();
}

void write_api_key(JsonWriter& w, const ApiKey& key) {
  w.begin_object();
  w.key("id").string(to_string(key.id));
  w.key("name").string(key.name);
  w.key("hint").string(std::string(api_key_prefix) + "…" + key.hint);
  w.key("created_at").string(format_rfc3339(key.created_at));
  w.key("created_by");
  if (key.created_by == UserId::none) {
    w.null();
  } else {
    w.string(to_string(key.created_by));
  }
  w.end_object();
}

void write_customization(JsonWriter& w, const OrgState& org) {
  const auto& c = org.customization;
  w.begin_object();
  w.key("name").string(org.name);
  optional_text(w, "logo_url", c.logo_url);
  optional_text(w, "contact_email", c.contact_email);
  optional_text(w, "address", c.address);
  optional_text(w, "terms_of_service_url", c.terms_of_service_url);
  optional_text(w, "privacy_policy_url", c.privacy_policy_url);
  w.end_object();
}

}  // namespace canopy::net
