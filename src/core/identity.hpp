#pragma once
// Who is calling: the roles of the platform and the verified claims of a bearer token.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "kit/enums.hpp"

namespace billing {

enum class Role { admin, hospital, individual, assistant };

template <>
struct EnumNames<Role> {
  static constexpr std::array<std::string_view, 4> names{"admin", "hospital", "individual",
                                                         "assistant"};
};

// A set of roles, e.g. the roles a route admits.
class RoleSet {
 public:
  constexpr RoleSet() = default;
  constexpr RoleSet(std::initializer_list<Role> roles) {
    for (Role r : roles) bits_ |= bit(r);
  }
  static constexpr RoleSet all() {
    return {Role::admin, Role::hospital, Role::individual, Role::assistant};
  }
  constexpr bool contains(Role r) const { return (bits_ & bit(r)) != 0; }
  constexpr bool empty() const { return bits_ == 0; }

 private:
  static constexpr std::uint8_t bit(Role r) {
    return static_cast<std::uint8_t>(1u << static_cast<unsigned>(r));
  }
  std::uint8_t bits_ = 0;
};

struct Identity {
  std::string subject;      // `sub`: the user
  Role role = Role::admin;  // `role`
  std::string entity_id;    // `role_entity_id`: the hospital, individual or assistant acted for
  std::string hospital_id;  // assistants only: their hospital
};

}  // namespace billing
