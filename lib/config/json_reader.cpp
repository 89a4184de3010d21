#include "config/json_reader.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"

namespace vitlab {

std::string json_brief(const Json& value) {
  // Replacing bytes that are not UTF-8 (a string from --set or a binary file) keeps the message.
  std::string s = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string join_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

void config_error(const std::string& source, const std::string& path, const std::string& message) {
  std::string where = path.empty() ? "" : path + ": ";
  std::string file = source.empty() ? "" : source + ": ";
  throw ConfigError(fmt::format("{}{}{}", file, where, message));
}

JsonReader::JsonReader(const Json& object, std::string path, std::string source)
    : object_(object), path_(std::move(path)), source_(std::move(source)) {
  if (object_.is_null()) object_ = Json::object();
  if (!object_.is_object())
    config_error(source_, path_, fmt::format("expected an object, got {}", json_brief(object_)));
}

bool JsonReader::has(const std::string& key) const { return object_.contains(key); }

const Json* JsonReader::take(const std::string& key) {
  known_.insert(key);
  auto it = object_.find(key);
  if (it == object_.end()) return nullptr;
  return &*it;
}

void JsonReader::error(const std::string& key, const std::string& message) const {
  config_error(source_, path_of(key), message);
}

void JsonReader::type_error(const std::string& key, const Json& value,
                            const std::string& expected) const {
  error(key, fmt::format("expected {}, got {}", expected, json_brief(value)));
}

void JsonReader::read(const std::string& key, bool& out) {
  const Json* v = take(key);
  if (!v) return;
  if (!v->is_boolean()) type_error(key, *v, "true or false");
  out = v->get<bool>();
}

void JsonReader::read(const std::string& key, std::string& out) {
  const Json* v = take(key);
  if (!v) return;
  if (!v->is_string()) type_error(key, *v, "a string");
  out = v->get<std::string>();
}

namespace {
bool as_integer(const Json& v, int64_t& out) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      return false;
    out = v.get<int64_t>();
    return true;
  }
  // 1e3 or 64.0 written for an integer field: accept only exact integers.
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
      out = static_cast<int64_t>(d);
      return true;
    }
  }
  return false;
}

std::string range_text(int64_t min, int64_t max) {
  const bool has_min = min != std::numeric_limits<int64_t>::min() &&
                       min != std::numeric_limits<int>::min();
  const bool has_max = max != std::numeric_limits<int64_t>::max() &&
                       max != std::numeric_limits<int>::max();
  if (has_min && has_max) return fmt::format("an integer in [{}, {}]", min, max);
  if (has_min) return fmt::format("an integer >= {}", min);
  if (has_max) return fmt::format("an integer <= {}", max);
  return "an integer";
}

std::string range_text(double min, double max) {
  const bool has_min = min != -std::numeric_limits<double>::max();
  const bool has_max = max != std::numeric_limits<double>::max();
  if (has_min && has_max) return fmt::format("a number in [{}, {}]", min, max);
  if (has_min) return fmt::format("a number >= {}", min);
  if (has_max) return fmt::format("a number <= {}", max);
  return "a finite number";
}
}  // namespace

void JsonReader::read(const std::string& key, int64_t& out, int64_t min, int64_t max) {
  const Json* v = take(key);
  if (!v) return;
  int64_t value = 0;
  if (!as_integer(*v, value) || value < min || value > max)
    type_error(key, *v, range_text(min, max));
  out = value;
}

void JsonReader::read(const std::string& key, int& out, int64_t min, int64_t max) {
  int64_t value = out;
  read(key, value, std::max<int64_t>(min, std::numeric_limits<int>::min()),
       std::min<int64_t>(max, std::numeric_limits<int>::max()));
  out = static_cast<int>(value);
}

void JsonReader::read(const std::string& key, double& out, double min, double max) {
  const Json* v = take(key);
  if (!v) return;
  if (!v->is_number()) type_error(key, *v, range_text(min, max));
  double value = v->get<double>();
  if (!std::isfinite(value) || value < min || value > max)
    type_error(key, *v, range_text(min, max));
  out = value;
}

void JsonReader::read(const std::string& key, std::vector<int64_t>& out, int64_t min,
                      int64_t max) {
  const Json* v = take(key);
  if (!v) return;
  const std::string expected = "a list of " + range_text(min, max).substr(3) + "s";
  if (!v->is_array()) type_error(key, *v, expected);
  std::vector<int64_t> values;
  for (size_t i = 0; i < v->size(); ++i) {
    int64_t x = 0;
    if (!as_integer((*v)[i], x) || x < min || x > max)
      error(fmt::format("{}[{}]", key, i),
            fmt::format("expected {}, got {}", range_text(min, max), json_brief((*v)[i])));
    values.push_back(x);
  }
  out = values;
}

void JsonReader::read(const std::string& key, std::vector<double>& out, double min, double max) {
  const Json* v = take(key);
  if (!v) return;
  if (!v->is_array()) type_error(key, *v, "a list of numbers");
  std::vector<double> values;
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& x = (*v)[i];
    if (!x.is_number() || !std::isfinite(x.get<double>()) || x.get<double>() < min ||
        x.get<double>() > max)
      error(fmt::format("{}[{}]", key, i),
            fmt::format("expected {}, got {}", range_text(min, max), json_brief(x)));
    values.push_back(x.get<double>());
  }
  out = values;
}

void JsonReader::read(const std::string& key, std::vector<std::string>& out) {
  const Json* v = take(key);
  if (!v) return;
  if (!v->is_array()) type_error(key, *v, "a list of strings");
  std::vector<std::string> values;
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string())
      error(fmt::format("{}[{}]", key, i),
            fmt::format("expected a string, got {}", json_brief((*v)[i])));
    values.push_back((*v)[i].get<std::string>());
  }
  out = values;
}

JsonReader JsonReader::child(const std::string& key) {
  const Json* v = take(key);
  if (!v) return JsonReader(Json::object(), path_of(key), source_);
  if (!v->is_object()) type_error(key, *v, "an object");
  return JsonReader(*v, path_of(key), source_);
}

void JsonReader::finish() const {
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (known_.count(it.key())) continue;
    std::string allowed;
    for (const auto& k : known_) allowed += (allowed.empty() ? "" : ", ") + k;
    error(it.key(), fmt::format("unknown key; known keys here: {}", allowed));
  }
}

Json read_json_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(file)) throw ConfigError(fmt::format("{}: no such file", file));
    throw ConfigError(fmt::format("{}: cannot be read", file));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    return Json::parse(buffer.str());
  } catch (const Json::parse_error& e) {
    throw ConfigError(fmt::format("{}: not valid JSON at byte {}: {}", file, e.byte, e.what()));
  } catch (const Json::exception& e) {  // a number beyond double's range (1e999) is out_of_range
    throw ConfigError(fmt::format("{}: not valid JSON: {}", file, e.what()));
  }
}

void write_json_file_atomic(const std::string& file, const Json& value) {
  write_file_atomic(file, value.dump(2) + "\n");
}

}  // namespace vitlab
