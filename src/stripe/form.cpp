#include "stripe/form.hpp"

#include <boost/url/encode.hpp>
#include <boost/url/grammar/lut_chars.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

namespace billing::stripe {

namespace urls = boost::urls;

namespace {

constexpr urls::grammar::lut_chars kSegmentChars =
    urls::unreserved_chars - urls::grammar::lut_chars('.');

}  // namespace

FormParams& FormParams::add(std::string_view key, std::string_view value) {
  params_.emplace_back(key, value);
  return *this;
}

std::string FormParams::encoded() const {
  std::string out;
  for (const auto& [key, value] : params_) {
    if (!out.empty()) out += '&';
    out += urls::encode(key, urls::unreserved_chars);
    out += '=';
    out += urls::encode(value, urls::unreserved_chars);
  }
  return out;
}

std::string path_segment(std::string_view id) {
  return urls::encode(id, kSegmentChars);
}

}  // namespace billing::stripe
