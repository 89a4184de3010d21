#include "experiment/run_folder.h"

#include <ctime>
#include <filesystem>
#include <fstream>

#include "config/run_config.h"
#include "core/atomic_file.h"

namespace vitlab {
namespace fs = std::filesystem;

namespace {
Json read_json_or_null(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return Json();
  try {
    return Json::parse(read_file(file.string()));
  } catch (const std::exception&) {
    return Json();  // unreadable: treated as absent/failed by the callers
  }
}
}  // namespace

StageState stage_state(const std::string& stage_dir) {
  const fs::path dir(stage_dir);
  std::error_code ec;
  if (fs::exists(dir / "result.json", ec)) {
    const Json r = read_json_or_null(dir / "result.json");
    const std::string status = r.is_object() ? r.value("status", std::string()) : "";
    if (status == "completed") return StageState::kCompleted;
    if (status == "diverged") return StageState::kDiverged;
    if (status == "interrupted") return StageState::kInterrupted;
    return StageState::kFailed;
  }
  if (fs::exists(dir / "config.json", ec) || fs::exists(dir / "checkpoints" / "last.pt", ec))
    return StageState::kPartial;
  return StageState::kNew;
}

Json stored_config(const std::string& stage_dir) {
  Json c = read_json_or_null(fs::path(stage_dir) / "config.json");
  if (c.is_object()) return c;
  const Json r = read_json_or_null(fs::path(stage_dir) / "result.json");
  if (r.is_object() && r.contains("config")) return r["config"];
  return Json();
}

namespace {
std::string difference(const Json& a, const Json& b, const std::string& path) {
  if (a.is_object() && b.is_object()) {
    std::vector<std::string> keys;
    for (auto it = a.begin(); it != a.end(); ++it) keys.push_back(it.key());
    for (auto it = b.begin(); it != b.end(); ++it)
      if (!a.contains(it.key())) keys.push_back(it.key());
    std::sort(keys.begin(), keys.end());
    for (const auto& k : keys) {
      const std::string p = join_path(path, k);
      if (is_bookkeeping_key(p)) continue;
      if (!a.contains(k)) return fmt::format("{} (absent there, {} in the sweep)", p, json_brief(b[k]));
      if (!b.contains(k)) return fmt::format("{} ({} there, absent in the sweep)", p, json_brief(a[k]));
      std::string d = difference(a[k], b[k], p);
      if (!d.empty()) return d;
    }
    return "";
  }
  if (a == b) return "";
  return fmt::format("{} ({} there, {} in the sweep)", path.empty() ? "(whole config)" : path,
                     json_brief(a), json_brief(b));
}
}  // namespace

namespace {
// The config with every key's default filled in, or as it is when it does not parse (a key that
// no longer exists, say: then the raw difference names it).
Json with_defaults(const Json& config) {
  try {
    return read_run_config(config).to_json();
  } catch (const std::exception&) {
    return config;
  }
}
}  // namespace

std::string first_config_difference(const Json& stored, const Json& planned) {
  // A run folder written before a config key existed lacks the key, and that run behaved as the
  // key's default says (a new key's default keeps the old behaviour). Comparing after defaults are
  // filled keeps committed results usable, and still names a key set to anything else.
  return difference(with_defaults(stored), with_defaults(planned), "");
}

std::vector<std::string> config_differences(const Json& from, const Json& to, const std::string& path) {
  std::vector<std::string> out;
  if (from.is_object() && to.is_object()) {
    for (auto it = to.begin(); it != to.end(); ++it) {
      const std::string p = join_path(path, it.key());
      if (!from.contains(it.key())) {
        out.push_back(p + "=" + it.value().dump());
        continue;
      }
      auto sub = config_differences(from[it.key()], it.value(), p);
      out.insert(out.end(), sub.begin(), sub.end());
    }
    return out;
  }
  if (from != to) out.push_back(path + "=" + to.dump());
  return out;
}

void set_aside_failed_result(const std::string& stage_dir, const std::string& stamp) {
  const fs::path from = fs::path(stage_dir) / "result.json";
  fs::path to = fs::path(stage_dir) / fmt::format("result.failed-{}.json", stamp);
  for (int i = 2; fs::exists(to); ++i)
    to = fs::path(stage_dir) / fmt::format("result.failed-{}-{}.json", stamp, i);
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) throw IoError(fmt::format("{}: cannot rename to {}: {}", from.string(), to.string(), ec.message()));
}

std::string move_to_trash(const std::string& run_dir, const std::string& trash_dir,
                          const std::string& id, const std::string& stamp) {
  ensure_writable_dir(trash_dir);
  fs::path to = fs::path(trash_dir) / fmt::format("{}-{}", id, stamp);
  for (int i = 2; fs::exists(to); ++i) to = fs::path(trash_dir) / fmt::format("{}-{}-{}", id, stamp, i);
  std::error_code ec;
  fs::rename(run_dir, to, ec);  // same file system (both under the sweep folder): atomic
  if (ec) throw IoError(fmt::format("{}: cannot move to {}: {}", run_dir, to.string(), ec.message()));
  return to.string();
}

void record_stage_failure(const std::string& stage_dir, const std::string& error) {
  Json result = {{"status", "failed"}, {"error", error}};
  const Json config = stored_config(stage_dir);
  if (!config.is_null()) result["config"] = config;
  write_json_file_atomic((fs::path(stage_dir) / "result.json").string(), result);
}

std::string last_error_in_log(const std::string& log_file) {
  std::ifstream in(log_file);
  std::string line, found;
  while (std::getline(in, line)) {
    const auto at = line.find("error: ");
    if (at != std::string::npos) found = line.substr(at + 7);
    else if (line.find("run failed: ") != std::string::npos) found = line.substr(line.find("run failed: ") + 12);
  }
  return found;
}

RunOutcome read_run_outcome(const std::string& run_dir, const std::vector<std::string>& stages) {
  RunOutcome out;
  std::vector<std::string> names = stages.empty() ? std::vector<std::string>{""} : stages;
  for (const auto& name : names) {
    const fs::path dir = name.empty() ? fs::path(run_dir) : fs::path(run_dir) / name;
    const std::string prefix = name.empty() ? "" : "stage " + name + ": ";
    const StageState state = stage_state(dir.string());
    if (state == StageState::kNew || state == StageState::kPartial || state == StageState::kInterrupted) {
      // An earlier stage finished but this one has not started: the run is under way.
      const bool started = state != StageState::kNew || name != names.front();
      out.status = started ? "interrupted" : "pending";
      out.result = Json();
      return out;
    }
    out.result = read_json_or_null(dir / "result.json");
    if (!out.result.is_object()) out.result = Json::object();
    out.train_seconds += out.result.value("train_seconds", 0.0);
    if (state != StageState::kCompleted) {
      out.status = state == StageState::kDiverged ? "diverged" : "failed";
      out.error = prefix + out.result.value("error", std::string("(no error recorded)"));
      return out;
    }
  }
  out.status = "completed";
  return out;
}

std::string timestamp_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%d-%H%M%S", &tm);
  return buffer;
}

}  // namespace vitlab
