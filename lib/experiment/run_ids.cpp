#include "experiment/run_ids.h"

#include <cctype>

namespace vitlab {

std::string sanitize_id_part(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                    c == '=' || c == '-';
    const char keep = ok && c != '_' ? c : '_';
    if (keep == '_' && (out.empty() || out.back() == '_')) continue;  // collapse and trim left
    out += keep;
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

std::string id_value_text(const Json& value) {
  return sanitize_id_part(value.is_string() ? value.get<std::string>() : value.dump());
}

namespace {
std::string short_key_of(const std::string& path) {
  const auto colon = path.find(':');
  const std::string stage = colon == std::string::npos ? "" : path.substr(0, colon);
  const std::string rest = colon == std::string::npos ? path : path.substr(colon + 1);
  const auto dot = rest.rfind('.');
  const std::string last = dot == std::string::npos ? rest : rest.substr(dot + 1);
  return stage.empty() ? last : stage + "." + last;
}
}  // namespace

std::map<std::string, std::string> short_keys(const std::vector<std::string>& paths) {
  std::map<std::string, int> uses;
  for (const auto& p : paths) ++uses[short_key_of(p)];
  std::map<std::string, std::string> out;
  for (const auto& p : paths) {
    const std::string s = short_key_of(p);
    out[p] = sanitize_id_part(uses[s] > 1 ? p : s);
  }
  return out;
}

std::string join_id_parts(const std::vector<std::string>& parts) {
  std::string id;
  for (const auto& p : parts) id += (id.empty() ? "" : "__") + p;
  constexpr size_t kMaxLength = 160;  // leaves room for "__seed=N" and stage folders
  if (id.size() <= kMaxLength) return id;
  uint64_t h = 1469598103934665603ull;  // FNV-1a: stable across platforms and runs
  for (unsigned char c : id) h = (h ^ c) * 1099511628211ull;
  std::string cut = id.substr(0, kMaxLength - 18);
  while (!cut.empty() && cut.back() == '_') cut.pop_back();
  return fmt::format("{}-h{:016x}", cut, h);
}

std::string run_id(const std::string& variant_key, int64_t seed) {
  return fmt::format("{}__seed={}", variant_key, seed);
}

}  // namespace vitlab
