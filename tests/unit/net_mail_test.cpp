// Goal: outgoing email is a well-formed MIME message whatever the org's branding holds, and the
// outbox writes whole files only.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "net/mail.hpp"

using namespace canopy;
using namespace canopy::net;

namespace {

domain::InvitationEmail sample() {
  domain::InvitationEmail mail;
  mail.from_name = "Acme Agency";
  mail.from_address = "hello@acme.test";
  mail.to = "new@person.test";
  mail.subject = "You're invited to join Acme Agency";
  mail.link = "https://console.test/invite/ci_x";
  mail.text = "Join us: https://console.test/invite/ci_x\n";
  mail.html = "<p><a href=\"https://console.test/invite/ci_x\">Accept</a></p>\n" + std::string(3000, 'x');
  return mail;
}

// The value of header `name` (unfolded lines are enough here: only encoded words fold).
std::string header(const std::string& message, const std::string& name) {
  const std::string head = "\r\n" + message.substr(0, message.find("\r\n\r\n"));
  const auto at = head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "";
  const auto start = at + 2 + name.size() + 2;
  return head.substr(start, head.find("\r\n", start) - start);
}

}  // namespace

TEST(Base64, MatchesRfc4648Vectors) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foob"), "Zm9vYg==");
  EXPECT_EQ(base64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(MailFormat, HasTheHeadersAndBothParts) {
  const std::string m = format_message(sample(), 1'795'000'000, "inv_1");
  EXPECT_EQ(header(m, "From"), "\"Acme Agency\" <hello@acme.test>");
  EXPECT_EQ(header(m, "To"), "<new@person.test>");
  EXPECT_EQ(header(m, "Subject"), "You're invited to join Acme Agency");
  EXPECT_EQ(header(m, "Message-ID"), "<inv_1@canopy>");
  EXPECT_EQ(header(m, "Date"), "Wed, 18 Nov 2026 11:06:40 +0000");
  EXPECT_NE(m.find("Content-Type: text/plain; charset=utf-8"), std::string::npos);
  EXPECT_NE(m.find("Content-Type: text/html; charset=utf-8"), std::string::npos);
  EXPECT_NE(m.find(base64(sample().text).substr(0, 76)), std::string::npos);
  EXPECT_NE(m.find("--canopy-inv_1--\r\n"), std::string::npos);
}

TEST(MailFormat, NoLineIsLongerThanSmtpAllowsAndEveryLineEndsInCrlf) {
  const std::string m = format_message(sample(), 0, "inv_1");
  std::size_t start = 0;
  while (start < m.size()) {
    const auto end = m.find("\r\n", start);
    ASSERT_NE(end, std::string::npos) << "a line without CRLF at " << start;
    EXPECT_LE(end - start, 998u);
    EXPECT_EQ(m.substr(start, end - start).find('\n'), std::string::npos) << "a bare LF";
    start = end + 2;
  }
}

TEST(MailFormat, NonAsciiNamesAndSubjectsAreEncodedWords) {
  auto mail = sample();
  mail.from_name = "Équipe Ünïcode";
  mail.subject = "You're invited to join Équipe Ünïcode";
  const std::string m = format_message(mail, 0, "inv_1");
  EXPECT_EQ(header(m, "From"), "=?UTF-8?B?" + base64("Équipe Ünïcode") + "?= <hello@acme.test>");
  EXPECT_EQ(header(m, "Subject").rfind("=?UTF-8?B?", 0), 0u);
  for (const char c : m.substr(0, m.find("\r\n\r\n"))) EXPECT_LT(static_cast<unsigned char>(c), 0x80) << "headers are ASCII";
}

TEST(MailFormat, HeaderInjectionIsImpossible) {
  auto mail = sample();
  mail.subject = "Hi\r\nBcc: victim@evil.test";
  mail.from_name = "Acme\r\nBcc: victim@evil.test";
  const std::string m = format_message(mail, 0, "inv_1");
  EXPECT_EQ(m.find("\r\nBcc:"), std::string::npos);
}

TEST(Outbox, WritesTheWholeMessageUnderItsName) {
  const auto dir = std::filesystem::temp_directory_path() / ("canopy-outbox-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const OutgoingMail mail{"hello@acme.test", "new@person.test", format_message(sample(), 0, "inv_1"), "inv_1"};
  const auto result = write_eml((dir / "nested").string(), mail);
  ASSERT_TRUE(result.ok) << result.error;
  std::ifstream in(dir / "nested" / "inv_1.eml", std::ios::binary);
  std::stringstream got;
  got << in.rdbuf();
  EXPECT_EQ(got.str(), mail.message);
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir / "nested")) ++files;
  EXPECT_EQ(files, 1u) << "no temporary file is left behind";
  std::filesystem::remove_all(dir);
}

TEST(Outbox, ReportsAFolderItCannotCreate) {
  const OutgoingMail mail{"a@b.test", "c@d.test", "x", "inv_1"};
  const auto result = write_eml("/proc/canopy-cannot-create-this", mail);
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.error.find("/proc/canopy-cannot-create-this"), std::string::npos);
}
