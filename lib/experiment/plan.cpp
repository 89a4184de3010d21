#include "experiment/plan.h"

#include <filesystem>
#include <map>
#include <set>

#include "config/run_config.h"
#include "experiment/run_ids.h"

namespace vitlab {
namespace fs = std::filesystem;

namespace {

// Every combination of the given axes, last axis fastest.
std::vector<std::vector<size_t>> cartesian(const std::vector<const GridAxis*>& axes) {
  std::vector<std::vector<size_t>> out;
  std::vector<size_t> index(axes.size(), 0);
  while (true) {
    out.push_back(index);
    size_t k = axes.size();
    while (k > 0) {
      --k;
      if (++index[k] < axes[k]->size()) break;
      index[k] = 0;
      if (k == 0) return out;
    }
    if (axes.empty()) return out;
  }
}

struct AxisPoint {
  std::vector<std::string> parts;   // "key=value"
  std::vector<Override> overrides;
  std::string shared_signature;     // the shared axes' values, to match rows with baselines
};

AxisPoint make_point(const std::vector<const GridAxis*>& axes, const std::vector<size_t>& index,
                     const std::map<std::string, std::string>& keys,
                     const std::vector<std::string>& shared) {
  AxisPoint p;
  for (size_t k = 0; k < axes.size(); ++k) {
    const GridAxis& a = *axes[k];
    const bool is_shared = std::find(shared.begin(), shared.end(), a.path) != shared.end();
    if (a.named()) {
      const std::string& name = a.names[index[k]];
      p.parts.push_back(keys.at(a.path) + "=" + name);
      const auto& bundle = a.bundles[index[k]];
      p.overrides.insert(p.overrides.end(), bundle.begin(), bundle.end());
      if (is_shared) p.shared_signature += a.path + "=" + name + ";";
      continue;
    }
    const Json& v = a.values[index[k]];
    p.parts.push_back(keys.at(a.path) + "=" + id_value_text(v));
    p.overrides.push_back({a.path, v, fmt::format("grid[\"{}\"][{}]", a.path, index[k])});
    if (is_shared) p.shared_signature += a.path + "=" + v.dump() + ";";
  }
  return p;
}

// A named baseline/variant crossed with the shared axes.
void add_named(std::vector<Variant>& out, std::map<std::string, std::string>& signature_of,
               const NamedOverrides& named, const std::string& kind,
               const std::vector<const GridAxis*>& shared_axes,
               const std::map<std::string, std::string>& keys, const std::vector<std::string>& shared) {
  for (const auto& index : cartesian(shared_axes)) {
    AxisPoint p = make_point(shared_axes, index, keys, shared);
    Variant v;
    v.kind = kind;
    v.name = named.name;
    std::vector<std::string> parts = {kind + "=" + named.name};
    parts.insert(parts.end(), p.parts.begin(), p.parts.end());
    v.key = join_id_parts(parts);
    v.overrides = p.overrides;
    v.overrides.insert(v.overrides.end(), named.overrides.begin(), named.overrides.end());
    signature_of[v.key] = p.shared_signature;
    out.push_back(std::move(v));
  }
}

// "<stage>:skip" is not a config path: it leaves the stage out (plan_stages).
bool is_skip(const Override& o) { return o.config_path() == "skip"; }

// Two parts of the sweep file setting the same path for one variant would leave one of them
// silently ignored.
void check_no_overlap(const Variant& v, const std::string& source) {
  for (size_t i = 0; i < v.overrides.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (v.overrides[i].path == v.overrides[j].path)
        config_error(source, v.overrides[i].origin,
                     fmt::format("sets \"{}\", which {} also sets for variant {}", v.overrides[i].path,
                                 v.overrides[j].origin, v.key));
}

// "@stage" in init_from: the named earlier stage's last checkpoint of the same run.
void resolve_stage_reference(Json& config, const std::vector<std::string>& earlier,
                             const std::string& run_dir, bool staged) {
  if (!config.contains("init_from") || !config["init_from"].is_string()) return;
  const std::string ref = config["init_from"].get<std::string>();
  if (ref.empty() || ref[0] != '@') return;
  const std::string name = ref.substr(1);
  if (!staged)
    throw ConfigError(fmt::format("init_from: \"{}\": an @name refers to an earlier stage of the "
                                  "same run, and this sweep has no stages", ref));
  for (const auto& s : earlier)
    if (s == name) {
      config["init_from"] = (fs::path(run_dir) / name / "checkpoints" / "last.pt").string();
      return;
    }
  std::string names;
  for (const auto& s : earlier) names += (names.empty() ? "" : ", ") + s;
  throw ConfigError(fmt::format("init_from: \"{}\" names no earlier stage of this run (earlier: {})",
                                ref, names.empty() ? "none" : names));
}

// Which part of the sweep file set the value an error message's path points at (for `stage`).
std::string origin_hint(const std::string& message, const std::vector<Override>& overrides,
                        const std::vector<Override>& stage_set, const std::string& stage) {
  const auto colon = message.find(": ");
  const std::string path = colon == std::string::npos ? "" : message.substr(0, colon);
  auto covers = [&](const Override& o) {
    const std::string p = o.config_path();
    return path == p || path.rfind(p + ".", 0) == 0 || path.rfind(p + "[", 0) == 0;
  };
  std::string hint;  // in application order: the last one applied wins
  for (const Override& o : stage_set)
    if (covers(o)) hint = o.origin;
  for (const bool scoped : {false, true})
    for (const Override& o : overrides)
      if (o.stage().empty() != scoped && (!scoped || o.stage() == stage) && covers(o)) hint = o.origin;
  return hint.empty() ? "" : " (set by " + hint + ")";
}

// The expected values name rows of the summary: each must be one, with a Δ for diff_pts.
void check_expected_rows(const SweepSpec& spec, const std::vector<Variant>& variants) {
  for (const auto& expected : spec.expected.values) {
    const std::string& row = expected.first;  // C++17 lambdas cannot capture a structured binding
    const std::string at = fmt::format("expected.values[\"{}\"]", row);
    const auto it = std::find_if(variants.begin(), variants.end(), [&](const Variant& v) { return v.key == row; });
    if (it == variants.end()) {
      std::string keys;
      for (const auto& v : variants) keys += (keys.empty() ? "" : ", ") + v.key;
      config_error(spec.source, at, fmt::format("no such row; the sweep's rows are: {}", keys));
    }
    if (spec.expected.metric == "diff_pts" && it->compare_to.empty())
      config_error(spec.source, at, "the reference baseline has no difference from itself; diff_pts "
                                    "values are for the rows compared with it");
  }
}

}  // namespace

std::vector<Variant> expand_variants(const SweepSpec& spec) {
  std::vector<std::string> paths;
  for (const auto& a : spec.grid) paths.push_back(a.path);
  const auto keys = short_keys(paths);
  std::vector<const GridAxis*> all, shared;
  for (const auto& a : spec.grid) {
    all.push_back(&a);
    if (std::find(spec.shared_axes.begin(), spec.shared_axes.end(), a.path) != spec.shared_axes.end())
      shared.push_back(&a);
  }
  std::vector<Variant> out;
  std::map<std::string, std::string> signature_of;
  // The reference baseline first, then the other baselines.
  std::vector<const NamedOverrides*> baselines;
  for (const auto& b : spec.baselines) if (b.name == spec.compare_to) baselines.push_back(&b);
  for (const auto& b : spec.baselines) if (b.name != spec.compare_to) baselines.push_back(&b);
  for (const auto* b : baselines)
    add_named(out, signature_of, *b, "baseline", shared, keys, spec.shared_axes);
  if (spec.grid.empty()) {
    Variant v;
    v.key = "base";
    v.kind = "base";
    out.push_back(v);
  } else {
    for (const auto& index : cartesian(all)) {
      AxisPoint p = make_point(all, index, keys, spec.shared_axes);
      Variant v;
      v.kind = "grid";
      v.key = join_id_parts(p.parts);
      v.overrides = p.overrides;
      signature_of[v.key] = p.shared_signature;
      out.push_back(std::move(v));
    }
  }
  for (const auto& named : spec.variants)
    add_named(out, signature_of, named, "variant", shared, keys, spec.shared_axes);
  for (const auto& v : out) check_no_overlap(v, spec.source);

  // Each row is compared with the reference baseline at the same shared-axis values.
  for (auto& v : out) {
    for (const auto& ref : out) {
      if (ref.kind != "baseline" || ref.name != spec.compare_to) continue;
      if (signature_of[ref.key] != signature_of[v.key]) continue;
      if (ref.key != v.key) v.compare_to = ref.key;
      break;
    }
  }
  return out;
}

namespace {

// The base must be a valid run on its own: its errors are reported once, as the base's.
void check_base(const SweepSpec& spec) {
  Json base = spec.base;
  base["seed"] = spec.seeds.front();
  const bool stage_reference = base.contains("init_from") && base["init_from"].is_string() &&
                               base["init_from"].get<std::string>().rfind("@", 0) == 0;
  if (stage_reference) return;
  try {
    read_run_config(base);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: base: {}{}", spec.source, e.what(),
                                  spec.extends ? recipe_origin(e.what(), spec.recipe, spec.own_base) : ""));
  }
}

// Config errors grouped by message: the first run id that has it and the number of runs.
using ConfigErrors = std::vector<std::pair<std::string, std::pair<std::string, int>>>;

void add_config_error(ConfigErrors& errors, const std::string& message, const std::string& run_id) {
  auto it = std::find_if(errors.begin(), errors.end(), [&](const auto& c) { return c.first == message; });
  if (it == errors.end()) errors.push_back({message, {run_id, 1}});
  else ++it->second.second;
}

// One stage's resolved config for variant `v` of `run`: the base, the stage's settings, then the
// variant's overrides for every stage, then its ones for this stage only ("stage:path").
Json stage_config(const SweepSpec& spec, const Variant& v, const SweepStage& stage,
                  const PlannedRun& run, const std::vector<std::string>& earlier, bool staged) {
  Json config = spec.base;
  for (const Override& o : stage.set) apply_override(config, o.path + "=" + o.value.dump(), o.origin);
  for (const bool scoped : {false, true})
    for (const Override& o : v.overrides)
      if (o.stage().empty() != scoped && (!scoped || o.stage() == stage.name) && !is_skip(o))
        apply_override(config, o.config_path() + "=" + o.value.dump(), o.origin);
  config["seed"] = run.seed;
  try {
    resolve_stage_reference(config, earlier, run.dir, staged);
    return read_run_config(config).to_json();
  } catch (const ConfigError& e) {
    throw ConfigError(e.what() + origin_hint(e.what(), v.overrides, stage.set, stage.name));
  }
}

// Whether variant `v` leaves `stage` out ("<stage>:skip": true); ConfigError for a skip without a
// stage, of another value, or of every stage.
bool skips_stage(const Variant& v, const std::string& stage, const std::vector<SweepStage>& stages) {
  bool skip = false;
  for (const Override& o : v.overrides) {
    if (!is_skip(o)) continue;
    if (o.stage().empty() || !o.value.is_boolean())
      throw ConfigError(fmt::format("{}: \"skip\" takes a stage, \"<stage>:skip\": true (leaves that "
                                    "stage out of this variant's runs)", o.origin));
    if (o.stage() == stage) skip = o.value.get<bool>();
  }
  size_t skipped = 0;
  for (const SweepStage& s : stages)
    for (const Override& o : v.overrides)
      if (is_skip(o) && o.stage() == s.name && o.value == true) ++skipped;
  if (skipped == stages.size())
    throw ConfigError(fmt::format("variant {} skips every stage", v.key));
  return skip;
}

// The run's stages with their configs; a stage whose config is invalid is left out and its error
// recorded, so that every problem of the sweep is reported at once. A stage the variant skips is
// not planned, and a later stage's "@name" cannot refer to it.
void plan_stages(PlannedRun& run, const Variant& v, const SweepSpec& spec,
                 const std::vector<SweepStage>& stages, bool staged, ConfigErrors& errors) {
  std::vector<std::string> earlier;  // stage names before this one
  for (const SweepStage& stage : stages) {
    try {
      if (staged && skips_stage(v, stage.name, stages)) continue;
    } catch (const ConfigError& e) {
      add_config_error(errors, e.what(), run.id);
      return;
    }
    PlannedStage ps;
    ps.name = stage.name;
    ps.dir = staged ? (fs::path(run.dir) / stage.name).string() : run.dir;
    try {
      ps.config = stage_config(spec, v, stage, run, earlier, staged);
      run.stages.push_back(std::move(ps));
    } catch (const ConfigError& e) {
      add_config_error(errors, (staged ? "stage " + stage.name + ": " : "") + e.what(), run.id);
    }
    earlier.push_back(stage.name);
  }
}

}  // namespace

SweepPlan plan_sweep(const SweepSpec& spec, const std::string& out_dir) {
  SweepPlan plan;
  plan.out_dir = fs::absolute(out_dir).lexically_normal().string();
  if (!plan.out_dir.empty() && plan.out_dir.size() > 1 && plan.out_dir.back() == '/')
    plan.out_dir.pop_back();
  check_base(spec);
  plan.variants = expand_variants(spec);
  check_expected_rows(spec, plan.variants);

  const bool staged = !spec.stages.empty();
  std::vector<SweepStage> stages = spec.stages;
  if (!staged) stages.push_back(SweepStage{});

  std::vector<std::string> problems;
  std::map<std::string, std::string> id_origin;
  ConfigErrors config_errors;
  for (int64_t seed : spec.seeds) {
    for (size_t vi = 0; vi < plan.variants.size(); ++vi) {
      const Variant& v = plan.variants[vi];
      PlannedRun run;
      run.id = run_id(v.key, seed);
      run.variant = vi;
      run.seed = seed;
      run.dir = (fs::path(plan.out_dir) / "runs" / run.id).string();
      const std::string what = v.kind == "grid" ? "grid point" : v.kind + " " + v.name;
      if (!id_origin.emplace(run.id, what).second) {
        problems.push_back(fmt::format("duplicate run id {} (from {} and from {}): give the values "
                                       "distinct names",
                                       run.id, id_origin[run.id], what));
        continue;
      }
      plan_stages(run, v, spec, stages, staged, config_errors);
      plan.runs.push_back(std::move(run));
    }
  }
  for (const auto& [message, where] : config_errors)
    problems.push_back(fmt::format("run {}{}: {}", where.first,
                                   where.second > 1 ? fmt::format(" (and {} more)", where.second - 1) : "",
                                   message));
  if (!problems.empty()) {
    std::string text = fmt::format("{}: {} problem{} in the sweep's runs (nothing was run):",
                                   spec.source, problems.size(), problems.size() > 1 ? "s" : "");
    for (const auto& p : problems) text += "\n  " + p;
    throw ConfigError(text);
  }
  return plan;
}

}  // namespace vitlab
