// The fixed vocabularies of the contract: roles, plans and modules, with their wire names.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace canopy::domain {

enum class Role : std::uint8_t { admin = 1, developer = 2, manager = 3, agent = 4 };
enum class Plan : std::uint8_t { free = 1, pay_as_you_go = 2, business = 3, enterprise = 4 };
enum class Module : std::uint8_t {
  inbox, analytics, boards, assistants, knowledge, broadcasts, workflows, audience
};
inline constexpr std::size_t module_count = 8;
using ModuleSet = std::uint8_t;  // bit i = Module i
inline constexpr ModuleSet all_modules = 0xff;

inline constexpr std::array<std::string_view, 4> role_names = {"admin", "developer", "manager", "agent"};
inline constexpr std::array<std::string_view, 4> plan_names = {"free", "pay_as_you_go", "business", "enterprise"};
inline constexpr std::array<std::string_view, module_count> module_names = {
    "inbox", "analytics", "boards", "assistants", "knowledge", "broadcasts", "workflows", "audience"};

inline std::string_view name_of(Role r) { return role_names[static_cast<std::size_t>(r) - 1]; }
inline std::string_view name_of(Plan p) { return plan_names[static_cast<std::size_t>(p) - 1]; }
inline std::string_view name_of(Module m) { return module_names[static_cast<std::size_t>(m)]; }

inline std::optional<Role> parse_role(std::string_view s) {
  for (std::size_t i = 0; i < role_names.size(); ++i) {
    if (role_names[i] == s) return static_cast<Role>(i + 1);
  }
  return std::nullopt;
}
inline std::optional<Plan> parse_plan(std::string_view s) {
  for (std::size_t i = 0; i < plan_names.size(); ++i) {
    if (plan_names[i] == s) return static_cast<Plan>(i + 1);
  }
  return std::nullopt;
}
inline std::optional<Module> parse_module(std::string_view s) {
  for (std::size_t i = 0; i < module_names.size(); ++i) {
    if (module_names[i] == s) return static_cast<Module>(i);
  }
  return std::nullopt;
}
constexpr ModuleSet bit(Module m) { return static_cast<ModuleSet>(1u << static_cast<unsigned>(m)); }

// Modules a parent must have effective for a child's toggle to take effect.
constexpr bool parent_gated(Module m) { return m == Module::broadcasts || m == Module::workflows; }

// What a root's plan pays for: `free` lacks broadcasts and workflows.
constexpr ModuleSet plan_modules(Plan p) {
  return p == Plan::free ? static_cast<ModuleSet>(all_modules & ~bit(Module::broadcasts) & ~bit(Module::workflows))
                         : all_modules;
}

// Sub-organizations need the paying root on business or enterprise.
constexpr bool plan_allows_sub_orgs(Plan p) { return p == Plan::business || p == Plan::enterprise; }

}  // namespace canopy::domain
