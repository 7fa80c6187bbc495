#pragma once
// A hospital's or individual's entity row is created on its first authenticated request; an
// assistant's row records its hospital.
#include <boost/asio/awaitable.hpp>

#include "auth/identity.hpp"
#include "storage/db.hpp"

namespace billing {

boost::asio::awaitable<void> enroll(Db& db, Identity caller, TimePoint now);

}  // namespace billing
