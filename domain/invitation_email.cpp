#include "domain/invitation_email.hpp"

namespace canopy::domain {

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string InvitationEmail::from() const {
  std::string out = "\"";
  for (const char c : from_name) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c != '\r' && c != '\n') out.push_back(c);
  }
  return out + "\" <" + from_address + ">";
}

std::string invitation_base_url(const OrgState& org, std::string_view public_url) {
  if (org.custom_domain && org.custom_domain->verified) return "https://" + org.custom_domain->hostname;
  std::string base(public_url);
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

InvitationEmail compose_invitation_email(const OrgState& org, const Invitation& invitation, std::string_view token,
                                         std::string_view inviter_name, std::string_view public_url,
                                         std::string_view default_sender) {
  InvitationEmail mail;
  const auto& brand = org.customization;
  mail.from_name = org.name;
  mail.from_address = brand.contact_email.empty() ? std::string(default_sender) : brand.contact_email;
  mail.to = invitation.email;
  mail.subject = "You're invited to join " + org.name;
  mail.link = invitation_base_url(org, public_url) + "/invite/" + std::string(token);
  const std::string role(name_of(invitation.role));
  const std::string who = inviter_name.empty() ? org.name : std::string(inviter_name);
  const std::string expires = format_rfc3339(invitation.expires_at);

  std::string& h = mail.html;
  h += "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n";
  if (!brand.logo_url.empty()) {
    h += "<p><img src=\"" + html_escape(brand.logo_url) + "\" alt=\"" + html_escape(org.name) + "\" height=\"48\"></p>\n";
  }
  h += "<h1>Join " + html_escape(org.name) + "</h1>\n";
  h += "<p>" + html_escape(who) + " invited you to join <strong>" + html_escape(org.name) + "</strong> as " +
       html_escape(role) + ".</p>\n";
  h += "<p><a href=\"" + html_escape(mail.link) + "\">Accept the invitation</a></p>\n";
  h += "<p>This link can be used once and expires at " + html_escape(expires) + ".</p>\n";
  std::string footer;
  if (!brand.address.empty()) footer += html_escape(brand.address) + "<br>\n";
  if (!brand.terms_of_service_url.empty()) {
    footer += "<a href=\"" + html_escape(brand.terms_of_service_url) + "\">Terms of service</a>\n";
  }
  if (!brand.privacy_policy_url.empty()) {
    footer += "<a href=\"" + html_escape(brand.privacy_policy_url) + "\">Privacy policy</a>\n";
  }
  if (!footer.empty()) h += "<p style=\"color: #666; font-size: small\">" + footer + "</p>\n";
  h += "</body></html>\n";

  std::string& t = mail.text;
  t += who + " invited you to join " + org.name + " as " + role + ".\n\n";
  t += "Accept the invitation: " + mail.link + "\n\n";
  t += "This link can be used once and expires at " + expires + ".\n";
  if (!brand.address.empty()) t += "\n" + brand.address + "\n";
  return mail;
}

}  // namespace canopy::domain
