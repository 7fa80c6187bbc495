#pragma once
// Who is calling: the verified claims of the bearer token.
#include <array>
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

struct Identity {
  std::string subject;      // `sub`: the user
  Role role = Role::admin;  // `role`
  std::string entity_id;    // `role_entity_id`: the hospital, individual or assistant acted for
  std::string hospital_id;  // assistants only: their hospital
};

}  // namespace billing
