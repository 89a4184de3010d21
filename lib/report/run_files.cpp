#include "report/run_files.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "experiment/manifest.h"

namespace vitlab {
namespace fs = std::filesystem;

namespace {

std::vector<Json> read_json_lines(const fs::path& file, int& skipped) {
  std::vector<Json> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    Json record = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_object()) out.push_back(std::move(record));
    else ++skipped;
  }
  return out;
}

}  // namespace

std::vector<RunFiles> read_run_files(const Json& manifest, const std::string& sweep_dir, int& skipped) {
  std::vector<RunFiles> out;
  std::error_code ec;
  for (const auto& run : manifest["runs"]) {
    RunFiles r{run["id"].get<std::string>(), run["variant"].get<std::string>(), run["seed"].get<int64_t>(), {}};
    std::vector<std::string> stages = run_stage_names(manifest, run);
    if (stages.empty()) stages.push_back("");
    for (const auto& name : stages) {
      const fs::path run_dir = fs::path(sweep_dir) / "runs" / r.id, dir = name.empty() ? run_dir : run_dir / name;
      StageFiles s{name, dir.string(), {}, Json()};
      if (fs::is_regular_file(dir / "metrics.jsonl", ec)) s.epochs = read_json_lines(dir / "metrics.jsonl", skipped);
      if (fs::is_regular_file(dir / "result.json", ec)) {
        try {
          s.result = read_json_file((dir / "result.json").string());
        } catch (const UserError&) {
          ++skipped;
        }
      }
      r.stages.push_back(std::move(s));
    }
    out.push_back(std::move(r));
  }
  return out;
}

const RunFiles* find_run(const std::vector<RunFiles>& runs, const std::string& id) {
  for (const auto& r : runs)
    if (r.id == id) return &r;
  return nullptr;
}

}  // namespace vitlab
