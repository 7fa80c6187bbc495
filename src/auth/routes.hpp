#pragma once
#include "auth/csrf.hpp"
#include "http/route.hpp"

namespace billing {

// GET /csrf-token.
void add_auth_routes(Router& router, const CsrfTokens& csrf);

}  // namespace billing
