#include "plans/catalog.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <boost/json/parse.hpp>

namespace billing {
namespace {

namespace json = boost::json;

[[noreturn]] void bad(const std::string& where, std::string_view why) {
  throw CatalogError(fmt::format("{}: {}", where, why));
}

const json::value& field(const json::object& o, const std::string& where, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (!v) bad(where, fmt::format("missing \"{}\"", name));
  return *v;
}

std::string text_field(const json::object& o, const std::string& where, std::string_view name) {
  const auto& v = field(o, where, name);
  if (!v.is_string() || v.get_string().empty())
    bad(where, fmt::format("\"{}\" must be a non-empty string", name));
  return std::string(v.get_string());
}

std::int64_t positive(const json::object& o, const std::string& where, std::string_view name) {
  const auto& v = field(o, where, name);
  if (!v.is_int64() || v.get_int64() <= 0)
    bad(where, fmt::format("\"{}\" must be a positive integer", name));
  return v.get_int64();
}

template <class E>
E enum_value(const json::value& v, const std::string& where) {
  if (!v.is_string()) bad(where, "must be a string");
  auto parsed = parse_enum<E>(v.get_string());
  if (!parsed) bad(where, fmt::format("unknown value \"{}\"", std::string_view(v.get_string())));
  return *parsed;
}

const json::array& array(const json::object& o, const std::string& where, std::string_view name) {
  const auto& v = field(o, where, name);
  if (!v.is_array()) bad(where, fmt::format("\"{}\" must be an array", name));
  return v.get_array();
}

std::vector<ServiceType> service_list(const json::object& o, const std::string& where,
                                      std::string_view name) {
  std::vector<ServiceType> out;
  const auto& items = array(o, where, name);
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto s = enum_value<ServiceType>(items[i], fmt::format("{}.{}[{}]", where, name, i));
    if (std::find(out.begin(), out.end(), s) != out.end())
      bad(where, fmt::format("\"{}\" lists {} twice", name, name_of(s)));
    out.push_back(s);
  }
  return out;
}

PlanOffer parse_offer(const json::value& v, const std::string& where) {
  if (!v.is_object()) bad(where, "must be an object");
  const auto& o = v.get_object();
  PlanOffer offer{
      .role = enum_value<EntityKind>(field(o, where, "role"), where + ".role"),
      .plan_type = enum_value<PlanType>(field(o, where, "plan_type"), where + ".plan_type"),
      .name = text_field(o, where, "name"),
      .description = text_field(o, where, "description"),
      .price_monthly_cents = positive(o, where, "price_monthly_cents"),
      .price_yearly_cents = 0,
      .max_agents = 0,
      .model_tier = text_field(o, where, "model_tier"),
      .rate_limit_per_minute = 0,
      .features = {},
      .is_recommended = false,
      .services = service_list(o, where, "services"),
      .default_services = service_list(o, where, "default_services"),
      .max_optional_services = std::nullopt,
  };
  const auto max_agents = positive(o, where, "max_agents");
  const auto rate_limit = positive(o, where, "rate_limit_per_minute");
  // The rate limiter refills one request a microsecond at most (kit/rate_limit.hpp).
  if (max_agents > 100000 || rate_limit > 60'000'000) bad(where, "limits are implausibly large");
  offer.max_agents = static_cast<int>(max_agents);
  offer.rate_limit_per_minute = static_cast<int>(rate_limit);

  if (o.contains("price_yearly_cents")) {
    offer.price_yearly_cents = positive(o, where, "price_yearly_cents");
  } else if (auto yearly = yearly_price_cents(offer.price_monthly_cents)) {
    offer.price_yearly_cents = *yearly;
  } else {
    bad(where, "monthly x 12 x 0.8 is not a whole number of cents; set \"price_yearly_cents\"");
  }
  // Stripe charges at most $999,999.99 at once; below that, no sum of prices overflows.
  constexpr Cents kLargestCharge = 99'999'999;
  if (offer.price_monthly_cents > kLargestCharge || offer.price_yearly_cents > kLargestCharge)
    bad(where, "prices must be at most 99999999 cents, Stripe's largest charge");

  for (const auto& feature : array(o, where, "features")) {
    if (!feature.is_string()) bad(where, "\"features\" must be strings");
    offer.features.emplace_back(feature.get_string());
  }
  if (const auto* rec = o.if_contains("is_recommended")) {
    if (!rec->is_bool()) bad(where, "\"is_recommended\" must be true or false");
    offer.is_recommended = rec->get_bool();
  }
  if (offer.services.empty()) bad(where, "\"services\" must offer at least one service");
  for (ServiceType s : offer.default_services)
    if (std::find(offer.services.begin(), offer.services.end(), s) == offer.services.end())
      bad(where, fmt::format("default service {} is not in \"services\"", name_of(s)));
  if (const auto* limit = o.if_contains("max_optional_services"); limit && !limit->is_null()) {
    if (!limit->is_int64() || limit->get_int64() < 0)
      bad(where, "\"max_optional_services\" must be a non-negative integer or null");
    offer.max_optional_services =
        static_cast<int>(std::min<std::int64_t>(limit->get_int64(), 1000));
  }
  return offer;
}

}  // namespace

std::optional<Cents> yearly_price_cents(Cents monthly_cents) {
  if (monthly_cents > INT64_MAX / (12 * 8)) return std::nullopt;  // would overflow
  const std::int64_t tenths = monthly_cents * 12 * 8;
  if (tenths % 10 != 0) return std::nullopt;
  return tenths / 10;
}

Catalog Catalog::parse(std::string_view text) {
  boost::system::error_code ec;
  const auto root = json::parse(text, ec);
  if (ec) throw CatalogError("not valid JSON: " + ec.message());
  if (!root.is_object()) throw CatalogError("the catalog must be a JSON object");
  const auto& top = root.get_object();

  Catalog catalog;
  const auto& services = array(top, "catalog", "services");
  for (std::size_t i = 0; i < services.size(); ++i) {
    const std::string where = fmt::format("services[{}]", i);
    if (!services[i].is_object()) bad(where, "must be an object");
    const auto& o = services[i].get_object();
    ServiceInfo info{enum_value<ServiceType>(field(o, where, "id"), where + ".id"),
                     text_field(o, where, "name"), text_field(o, where, "description")};
    for (const auto& seen : catalog.services_)
      if (seen.id == info.id) bad(where, fmt::format("{} is described twice", name_of(info.id)));
    catalog.services_.push_back(std::move(info));
  }
  for (std::size_t i = 0; i < EnumNames<ServiceType>::names.size(); ++i) {
    const auto s = static_cast<ServiceType>(i);
    if (std::none_of(catalog.services_.begin(), catalog.services_.end(),
                     [&](const ServiceInfo& info) { return info.id == s; }))
      bad("services", fmt::format("no description for service {}", name_of(s)));
  }

  const auto& plans = array(top, "catalog", "plans");
  if (plans.empty()) throw CatalogError("plans: the catalog offers no plan");
  for (std::size_t i = 0; i < plans.size(); ++i) {
    auto offer = parse_offer(plans[i], fmt::format("plans[{}]", i));
    if (catalog.find(offer.role, offer.plan_type))
      bad(fmt::format("plans[{}]", i),
          fmt::format("a second {} {} plan", name_of(offer.role), name_of(offer.plan_type)));
    catalog.offers_.push_back(std::move(offer));
  }
  return catalog;
}

Catalog Catalog::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw CatalogError("cannot read " + path);
  std::stringstream content;
  content << in.rdbuf();
  try {
    return parse(content.str());
  } catch (const CatalogError& e) {
    throw CatalogError(fmt::format("{}: {}", path, e.what()));
  }
}

const PlanOffer* Catalog::find(EntityKind role, PlanType plan_type) const {
  for (const auto& offer : offers_)
    if (offer.role == role && offer.plan_type == plan_type) return &offer;
  return nullptr;
}

const ServiceInfo& Catalog::service(ServiceType id) const {
  for (const auto& info : services_)
    if (info.id == id) return info;
  throw std::logic_error("catalog without service " + std::string(name_of(id)));
}

std::vector<ServiceType> Catalog::services_for(EntityKind role) const {
  std::vector<ServiceType> out;
  for (const auto& info : services_)
    for (const auto& offer : offers_)
      if (offer.role == role && std::find(offer.services.begin(), offer.services.end(), info.id) !=
                                    offer.services.end()) {
        out.push_back(info.id);
        break;
      }
  return out;
}

}  // namespace billing
