#include "auth/jwt.hpp"

#include <cmath>
#include <optional>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include "kit/crypto.hpp"
#include "kit/json.hpp"
#include "kit/text.hpp"

namespace billing {
namespace {

constexpr std::chrono::seconds kClockLeeway{5};

[[noreturn]] void reject(AuthFailure why,
                         std::string_view detail = "Invalid authentication credentials") {
  throw AuthError(why, detail);
}

boost::json::object decode_part(std::string_view part) {
  auto bytes = base64url_decode(part);
  if (!bytes) reject(AuthFailure::malformed);
  boost::system::error_code ec;
  auto value = boost::json::parse(*bytes, ec);
  if (ec || !value.is_object()) reject(AuthFailure::malformed);
  return std::move(value.get_object());
}

std::string_view string_claim(const boost::json::object& claims, std::string_view name) {
  const auto* value = claims.if_contains(name);
  if (!value || !value->is_string() || !plausible_id(value->get_string()))
    reject(AuthFailure::claims);
  return value->get_string();
}

// A NumericDate claim (RFC 7519 2): seconds since the epoch, possibly fractional. Nothing if
// absent; 401 if present but not a number.
std::optional<std::int64_t> time_claim(const boost::json::object& claims, std::string_view name) {
  const auto* value = claims.if_contains(name);
  if (!value) return std::nullopt;
  if (value->is_int64()) return value->get_int64();
  if (value->is_uint64() && value->get_uint64() <= INT64_MAX)
    return static_cast<std::int64_t>(value->get_uint64());
  if (value->is_double() && std::isfinite(value->get_double()) &&
      std::abs(value->get_double()) < 1e17)
    return static_cast<std::int64_t>(std::floor(value->get_double()));
  reject(AuthFailure::claims);
}

}  // namespace

Identity JwtCodec::verify(std::string_view token) const {
  const auto first_dot = token.find('.');
  const auto last_dot = token.rfind('.');
  if (first_dot == std::string_view::npos || first_dot == last_dot) reject(AuthFailure::malformed);
  const auto signing_input = token.substr(0, last_dot);
  const auto signature = base64url_decode(token.substr(last_dot + 1));
  if (!signature) reject(AuthFailure::malformed);

  const auto header = decode_part(token.substr(0, first_dot));
  const auto* alg = header.if_contains("alg");
  if (!alg || !alg->is_string() || alg->get_string() != "HS256") reject(AuthFailure::algorithm);
  if (!constant_time_equal(*signature, as_chars(hmac_(signing_input))))
    reject(AuthFailure::signature);

  const auto claims = decode_part(token.substr(first_dot + 1, last_dot - first_dot - 1));
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch());
  const auto expires = time_claim(claims, "exp");
  if (!expires) reject(AuthFailure::claims);
  if (now.count() >= *expires) reject(AuthFailure::expired, "Token has expired");
  // RFC 7519 4.1.5: not before `nbf`. A token issued (`iat`) in the future is refused too. Both
  // with a little leeway for clocks that disagree.
  const auto not_before = time_claim(claims, "nbf");
  const auto issued_at = time_claim(claims, "iat");
  if ((not_before && now.count() + kClockLeeway.count() < *not_before) ||
      (issued_at && now.count() + kClockLeeway.count() < *issued_at))
    reject(AuthFailure::not_yet_valid, "Token is not yet valid");

  const auto role = parse_enum<Role>(string_claim(claims, "role"));
  if (!role) reject(AuthFailure::claims);
  Identity identity{.subject = std::string(string_claim(claims, "sub")), .role = *role};
  if (*role != Role::admin) identity.entity_id = string_claim(claims, "role_entity_id");
  if (*role == Role::assistant) identity.hospital_id = string_claim(claims, "hospital_id");
  return identity;
}

std::string JwtCodec::sign(const Identity& identity, TimePoint expires_at) const {
  boost::json::object claims{
      {"sub", identity.subject},
      {"role", name_of(identity.role)},
      {"exp",
       std::chrono::duration_cast<std::chrono::seconds>(expires_at.time_since_epoch()).count()},
  };
  if (!identity.entity_id.empty()) claims["role_entity_id"] = identity.entity_id;
  if (!identity.hospital_id.empty()) claims["hospital_id"] = identity.hospital_id;
  std::string token =
      base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url_encode(to_json(claims));
  const auto signature = hmac_(token);
  return token + "." + base64url_encode(as_chars(signature));
}

}  // namespace billing
