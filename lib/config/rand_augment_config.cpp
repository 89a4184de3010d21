#include "config/rand_augment_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "config/json_reader.h"

namespace vitlab {

RandAugmentConfig parse_rand_augment(const std::string& spec, const std::string& source,
                                     const std::string& path) {
  RandAugmentConfig c;
  const auto bad = [&](const std::string& why) {
    config_error(
        source, path,
        fmt::format("\"{}\": {}; expected timm's form, e.g. \"rand-m9-mstd0.5\" (parts m, n, "
                    "mstd, mmax, p)",
                    spec, why));
  };
  if (spec.rfind("rand", 0) != 0) bad("does not start with \"rand\"");
  size_t start = 4;
  while (start < spec.size()) {
    if (spec[start] != '-') bad("parts are separated by \"-\"");
    const size_t end = std::min(spec.find('-', start + 1), spec.size());
    const std::string part = spec.substr(start + 1, end - start - 1);
    const size_t digits = part.find_first_of("0123456789.");
    const std::string key = part.substr(0, digits);
    double value = 0;
    try {
      size_t used = 0;
      value = std::stod(part.substr(digits == std::string::npos ? part.size() : digits), &used);
      if (digits + used != part.size()) bad("\"" + part + "\" is not a number after its name");
    } catch (const std::exception&) {
      bad("\"" + part + "\" has no number");
    }
    if (key == "m")
      c.magnitude = value;
    else if (key == "n")
      c.num_ops = static_cast<int>(value);
    else if (key == "mstd")
      c.magnitude_std = value > 100 ? std::numeric_limits<double>::infinity() : value;
    else if (key == "mmax")
      c.magnitude_max = value > 0 ? value : 10;
    else if (key == "p")
      c.prob = value;
    else
      bad("unknown part \"" + key + "\"");
    start = end;
  }
  if (c.num_ops < 1 || c.num_ops > 16 || c.magnitude < 0 || c.magnitude_std < 0 || c.prob < 0 ||
      c.prob > 1)
    bad("n must be 1-16, m and mstd >= 0, p in [0, 1]");
  return c;
}

}  // namespace vitlab
