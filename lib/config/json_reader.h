// Strict reading of JSON config objects (the nanoGPT rule: nothing is silently ignored).
// Every key must be known, every value of the right type and range; errors name the JSON path,
// the bad value and what is allowed. A value not given keeps the field's current value, which is
// the preset's or the struct's documented default; the resolved config is written out in full.
#pragma once
#include <nlohmann/json.hpp>

#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace vitlab {

using Json = nlohmann::json;

// Names an enum's values for reading, writing and error messages.
template <typename E>
using EnumNames = std::vector<std::pair<E, const char*>>;

template <typename E>
const char* enum_name(E value, const EnumNames<E>& names) {
  for (const auto& [v, n] : names)
    if (v == value) return n;
  return "?";
}

template <typename E>
std::string enum_choices(const EnumNames<E>& names) {
  std::string out;
  for (const auto& [v, n] : names) out += (out.empty() ? "" : " | ") + std::string(n);
  return out;
}

// "null", "3", "\"abc\"", truncated for messages.
std::string json_brief(const Json& value);

// Joins a parent path and a key: ("model", "width") -> "model.width".
std::string join_path(const std::string& parent, const std::string& key);

class JsonReader {
 public:
  // `path` is the object's JSON path ("" for the root); `source` is prefixed to messages
  // (usually the file name).
  JsonReader(const Json& object, std::string path, std::string source = "");

  bool has(const std::string& key) const;
  std::string path_of(const std::string& key) const { return join_path(path_, key); }
  const std::string& path() const { return path_; }
  const std::string& source() const { return source_; }

  void read(const std::string& key, bool& out);
  void read(const std::string& key, std::string& out);
  void read(const std::string& key, int64_t& out, int64_t min = std::numeric_limits<int64_t>::min(),
            int64_t max = std::numeric_limits<int64_t>::max());
  void read(const std::string& key, int& out, int64_t min = std::numeric_limits<int>::min(),
            int64_t max = std::numeric_limits<int>::max());
  void read(const std::string& key, double& out, double min = -std::numeric_limits<double>::max(),
            double max = std::numeric_limits<double>::max());
  void read(const std::string& key, std::vector<int64_t>& out, int64_t min, int64_t max);
  void read(const std::string& key, std::vector<double>& out, double min, double max);
  void read(const std::string& key, std::vector<std::string>& out);

  template <typename E>
  void read_enum(const std::string& key, E& out, const EnumNames<E>& names) {
    const Json* v = take(key);
    if (!v) return;
    if (!v->is_string()) type_error(key, *v, "one of " + enum_choices(names));
    const std::string s = v->get<std::string>();
    for (const auto& [value, name] : names) {
      if (s == name) {
        out = value;
        return;
      }
    }
    error(key, fmt::format("unknown value {}; allowed: {}", json_brief(*v), enum_choices(names)));
  }

  // The nested object at `key`; throws if it is present and not an object. Returns an empty
  // reader when absent (so every field keeps its default).
  JsonReader child(const std::string& key);

  // Throws a ConfigError for every key that no read() asked for, listing the known ones.
  void finish() const;

  // Throws a ConfigError at this object's `key`.
  [[noreturn]] void error(const std::string& key, const std::string& message) const;

 private:
  const Json* take(const std::string& key);
  [[noreturn]] void type_error(const std::string& key, const Json& value,
                               const std::string& expected) const;

  Json object_;
  std::string path_;
  std::string source_;
  std::set<std::string> known_;
};

// Throws a ConfigError with "source: path: message".
[[noreturn]] void config_error(const std::string& source, const std::string& path,
                               const std::string& message);

// Reads a JSON file (comments not allowed); a missing file or a syntax error is a ConfigError
// that names the file and, for syntax errors, the byte offset.
Json read_json_file(const std::string& file);

// Writes JSON atomically (temporary file, flush, rename), pretty-printed.
void write_json_file_atomic(const std::string& file, const Json& value);

}  // namespace vitlab
