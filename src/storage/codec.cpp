#include "storage/codec.hpp"

#include <stdexcept>

namespace billing {

std::string encode_services(const std::vector<ServiceType>& services) {
  std::string out;
  for (ServiceType s : services) {
    if (!out.empty()) out.push_back(',');
    out += name_of(s);
  }
  return out;
}

std::vector<ServiceType> decode_services(std::string_view text) {
  std::vector<ServiceType> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    out.push_back(decode_enum<ServiceType>(text.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace billing
