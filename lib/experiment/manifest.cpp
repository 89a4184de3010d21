#include "experiment/manifest.h"

#include <filesystem>

namespace vitlab {
namespace fs = std::filesystem;

std::string manifest_path(const std::string& sweep_dir) {
  return (fs::path(sweep_dir) / "sweep.json").string();
}

Json make_manifest(const SweepSpec& spec, const SweepPlan& plan) {
  Json variants = Json::array();
  for (const auto& v : plan.variants) {
    Json overrides = Json::object();
    for (const auto& o : v.overrides) overrides[o.path] = o.value;
    variants.push_back({{"key", v.key},
                        {"kind", v.kind},
                        {"name", v.name},
                        {"overrides", overrides},
                        {"compare_to", v.compare_to.empty() ? Json() : Json(v.compare_to)}});
  }
  Json runs = Json::array();
  for (const auto& r : plan.runs) {
    Json names = Json::array();
    for (const auto& s : r.stages) names.push_back(s.name);
    runs.push_back({{"id", r.id}, {"variant", plan.variants[r.variant].key}, {"seed", r.seed}});
    if (!spec.stages.empty()) runs.back()["stages"] = names;
  }
  Json stages = Json::array();
  for (const auto& s : spec.stages) stages.push_back(s.name);
  return Json{{"format", kManifestFormat},
              {"name", spec.name},
              {"sweep_file", spec.source},
              {"description", spec.description},
              {"claim", spec.claim},
              {"command", spec.command},
              {"expected", spec.expected.to_json()},
              {"recipe", spec.extends ? Json{{"file", spec.recipe.file},
                                             {"description", spec.recipe.description},
                                             {"config", spec.recipe.config}}
                                      : Json()},
              {"base", spec.base},
              {"compare_to", spec.compare_to},
              {"shared_axes", spec.shared_axes},
              {"stages", stages},
              {"variants", variants},
              {"runs", runs},
              {"sweep", spec.raw}};
}

std::vector<std::string> run_stage_names(const Json& manifest, const Json& run) {
  const Json& names = run.contains("stages") && run["stages"].is_array() ? run["stages"] : manifest["stages"];
  std::vector<std::string> out;
  for (const auto& s : names) out.push_back(s.get<std::string>());
  return out;
}

Json read_manifest(const std::string& sweep_dir) {
  const std::string path = manifest_path(sweep_dir);
  if (!fs::is_directory(sweep_dir))
    throw UserError(fmt::format("{}: no such folder (give the folder `vitlab sweep` wrote)", sweep_dir));
  if (!fs::exists(path))
    throw UserError(fmt::format("{}: not a sweep folder (no sweep.json; `vitlab sweep` writes it "
                                "when it starts)", sweep_dir));
  Json m = read_json_file(path);
  const bool ok = m.is_object() && m.value("format", 0) == kManifestFormat && m.contains("variants") &&
                  m["variants"].is_array() && m.contains("runs") && m["runs"].is_array() &&
                  m.contains("stages") && m["stages"].is_array();
  if (!ok)
    throw UserError(fmt::format("{}: not a sweep manifest of format {} (written by another vitlab "
                                "version?)", path, kManifestFormat));
  return m;
}

}  // namespace vitlab
