#pragma once
// Stripe's request encoding: application/x-www-form-urlencoded, nested parameters in bracket
// notation (metadata[plan]=pro, line_items[0][price]=price_x), for POST bodies and GET queries.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace billing::stripe {

class FormParams {
 public:
  FormParams& add(std::string_view key, std::string_view value);
  bool empty() const { return params_.empty(); }
  // key=value pairs joined by '&' in the order added; keys and values percent-encoded except
  // for RFC 3986's unreserved characters (so '[' is %5B and '+' is %2B, never read as a space).
  std::string encoded() const;

 private:
  std::vector<std::pair<std::string, std::string>> params_;
};

// An id as one path segment: '/', '?', '#' and '.' are escaped too, so no id can change the
// path it is put in (not even "..").
std::string path_segment(std::string_view id);

}  // namespace billing::stripe
