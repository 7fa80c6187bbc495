#include "auth/jwt.hpp"

#include <cmath>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include "kit/api_error.hpp"
#include "kit/crypto.hpp"
#include "kit/json.hpp"
#include "kit/text.hpp"

namespace billing {
namespace {

[[noreturn]] void reject(std::string_view detail = "Invalid authentication credentials") {
  throw ApiError(401, detail);
}

boost::json::object decode_part(std::string_view part) {
  auto bytes = base64url_decode(part);
  if (!bytes) reject();
  boost::system::error_code ec;
  auto value = boost::json::parse(*bytes, ec);
  if (ec || !value.is_object()) reject();
  return std::move(value.get_object());
}

std::string_view string_claim(const boost::json::object& claims, std::string_view name) {
  const auto* value = claims.if_contains(name);
  if (!value || !value->is_string() || value->get_string().empty() ||
      value->get_string().size() > 128 || !free_of_control_characters(value->get_string()))
    reject();
  return value->get_string();
}

std::int64_t expiry_claim(const boost::json::object& claims) {
  const auto* exp = claims.if_contains("exp");
  if (!exp) reject();
  if (exp->is_int64()) return exp->get_int64();
  if (exp->is_uint64() && exp->get_uint64() <= INT64_MAX)
    return static_cast<std::int64_t>(exp->get_uint64());
  if (exp->is_double() && std::isfinite(exp->get_double()) && std::abs(exp->get_double()) < 1e17)
    return static_cast<std::int64_t>(std::floor(exp->get_double()));
  reject();
}

}  // namespace

Identity JwtCodec::verify(std::string_view token) const {
  const auto first_dot = token.find('.');
  const auto last_dot = token.rfind('.');
  if (first_dot == std::string_view::npos || first_dot == last_dot) reject();
  const auto signing_input = token.substr(0, last_dot);
  const auto signature = base64url_decode(token.substr(last_dot + 1));
  if (!signature) reject();

  const auto header = decode_part(token.substr(0, first_dot));
  const auto* alg = header.if_contains("alg");
  if (!alg || !alg->is_string() || alg->get_string() != "HS256") reject();
  if (!constant_time_equal(*signature, as_chars(hmac_(signing_input)))) reject();

  const auto claims = decode_part(token.substr(first_dot + 1, last_dot - first_dot - 1));
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch());
  if (now.count() >= expiry_claim(claims)) reject("Token has expired");

  const auto role = parse_enum<Role>(string_claim(claims, "role"));
  if (!role) reject();
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
