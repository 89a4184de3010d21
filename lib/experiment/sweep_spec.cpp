#include "experiment/sweep_spec.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <limits>
#include <set>

namespace vitlab {
namespace {

std::string quoted(const std::string& key) { return "[\"" + key + "\"]"; }

// JsonReader's rule for keys no read() asked for, for objects read by hand.
void check_keys(const Json& object, const std::string& path, const std::vector<std::string>& known,
                const std::string& source) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (std::find(known.begin(), known.end(), it.key()) != known.end()) continue;
    std::string allowed;
    for (const auto& k : known) allowed += (allowed.empty() ? "" : ", ") + k;
    config_error(source, join_path(path, it.key()),
                 fmt::format("unknown key; known keys here: {}", allowed));
  }
}

// A dotted config path, optionally "<stage>:" first; `where` is its JSON path for messages.
void check_override_path(const std::string& path, const std::string& where,
                         const std::set<std::string>& stages, bool allow_stage,
                         const std::string& source) {
  std::string config_path = path;
  const auto colon = path.find(':');
  if (colon != std::string::npos) {
    const std::string stage = path.substr(0, colon);
    if (!allow_stage)
      config_error(source, where, fmt::format("\"{}\": a stage's own settings take no stage prefix", path));
    if (stages.empty())
      config_error(source, where, fmt::format("\"{}\" names stage \"{}\" but the sweep has no stages",
                                              path, stage));
    if (!stages.count(stage))
      config_error(source, where, fmt::format("\"{}\" names stage \"{}\", which is not in stages",
                                              path, stage));
    config_path = path.substr(colon + 1);
  }
  const bool empty_part = config_path.empty() || config_path.front() == '.' ||
                          config_path.back() == '.' ||
                          config_path.find("..") != std::string::npos;
  if (empty_part)
    config_error(source, where, fmt::format("\"{}\" is not a dotted config path like model.pos_embed", path));
  if (config_path == "seed")
    config_error(source, where, "a run's seed comes from the sweep's \"seeds\" list");
}

std::vector<Override> read_overrides(const Json& object, const std::string& where,
                                     const std::set<std::string>& stages, bool allow_stage,
                                     const std::string& source) {
  if (!object.is_object())
    config_error(source, where, fmt::format("expected an object of \"dotted.path\": value "
                                            "overrides, got {}", json_brief(object)));
  std::vector<Override> out;
  for (auto it = object.begin(); it != object.end(); ++it) {
    const std::string at = where + quoted(it.key());
    check_override_path(it.key(), at, stages, allow_stage, source);
    out.push_back({it.key(), it.value(), at});
  }
  return out;  // nlohmann's objects iterate in key order: already sorted
}

std::vector<NamedOverrides> read_named(const Json& json, const std::string& key,
                                       const std::set<std::string>& stages,
                                       const std::string& source) {
  std::vector<NamedOverrides> out;
  if (!json.contains(key)) return out;
  const Json& object = json.at(key);
  if (!object.is_object())
    config_error(source, key, fmt::format("expected an object of name: {{overrides}}, got {}",
                                          json_brief(object)));
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (!is_valid_name(it.key()))
      config_error(source, join_path(key, it.key()),
                   "names may use only letters, digits, '.', '_' and '-' (they become run ids)");
    out.push_back({it.key(), read_overrides(it.value(), join_path(key, it.key()), stages, true, source)});
  }
  return out;
}

std::vector<SweepStage> read_stages(const Json& json, const std::string& source) {
  std::vector<SweepStage> out;
  if (!json.contains("stages")) return out;
  const Json& list = json.at("stages");
  if (!list.is_array() || list.empty())
    config_error(source, "stages", fmt::format("expected a non-empty list of {{\"name\", \"set\"}} "
                                               "objects, got {}", json_brief(list)));
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = fmt::format("stages[{}]", i);
    const Json& s = list[i];
    if (!s.is_object()) config_error(source, at, fmt::format("expected an object, got {}", json_brief(s)));
    check_keys(s, at, {"description", "name", "set"}, source);
    JsonReader r(s, at, source);
    SweepStage stage;
    r.read("name", stage.name);
    r.read("description", stage.description);
    if (stage.name.empty()) r.error("name", "missing; each stage needs a name (e.g. \"pretrain\")");
    if (!is_valid_name(stage.name))
      r.error("name", "names may use only letters, digits, '.', '_' and '-' (they become folder names)");
    if (!names.insert(stage.name).second)
      r.error("name", fmt::format("\"{}\" is used by two stages", stage.name));
    if (s.contains("set")) stage.set = read_overrides(s.at("set"), at + ".set", {}, false, source);
    out.push_back(std::move(stage));
  }
  return out;
}

bool blank(const std::string& text) { return text.find_first_not_of(" \t\n") == std::string::npos; }

Expected read_expected(const Json& json, const std::string& source) {
  if (!json.contains("expected"))
    config_error(source, "expected",
                 fmt::format("missing; give {{\"metric\", \"values\", \"tolerance\", \"measured_on\"}}: "
                             "what the sweep should measure (before the first measurement: "
                             "\"values\": {{}}, \"measured_on\": \"{}\")", kNotYetMeasured));
  const Json& e = json.at("expected");
  if (!e.is_object())
    config_error(source, "expected", fmt::format("expected an object {{\"metric\", \"values\", "
                                                 "\"tolerance\", \"measured_on\"}}, got {}", json_brief(e)));
  JsonReader r(e, "expected", source);
  Expected x;
  const std::string metrics = "test_accuracy_pct (a row's mean test accuracy, percent) | diff_pts "
                              "(its difference from its baseline row, percentage points)";
  if (!r.has("metric")) r.error("metric", "missing; one of " + metrics);
  r.read("metric", x.metric);
  if (x.metric != "test_accuracy_pct" && x.metric != "diff_pts")
    r.error("metric", fmt::format("unknown metric \"{}\"; one of {}", x.metric, metrics));
  if (!r.has("tolerance"))
    r.error("tolerance", "missing; how far a measured value may be from the expected one, in the metric's unit");
  r.read("tolerance", x.tolerance, 0.0, 100.0);
  if (!r.has("measured_on"))
    r.error("measured_on", fmt::format("missing; where and when the values were measured (machine, "
                                       "date, commit), or \"{}\"", kNotYetMeasured));
  r.read("measured_on", x.measured_on);
  if (blank(x.measured_on))
    r.error("measured_on", fmt::format("empty; say where and when the values were measured, or \"{}\"",
                                       kNotYetMeasured));
  if (!r.has("values"))
    r.error("values", "missing; give {\"<row>\": value} for the rows the claim is about ({} before "
                      "the first measurement)");
  r.child("values");  // type check: an object
  const double low = x.metric == "diff_pts" ? -100.0 : 0.0;
  for (auto it = e.at("values").begin(); it != e.at("values").end(); ++it) {
    const std::string at = "expected.values" + quoted(it.key());
    const bool number = it.value().is_number() && it.value().get<double>() >= low &&
                        it.value().get<double>() <= 100.0;
    if (!number)
      config_error(source, at, fmt::format("expected a number from {} to 100 ({}), got {}", low,
                                           x.metric == "diff_pts" ? "percentage points" : "percent",
                                           json_brief(it.value())));
    x.values.push_back({it.key(), it.value().get<double>()});
  }
  r.finish();
  if (x.values.empty() && x.measured_on != kNotYetMeasured)
    r.error("values", fmt::format("empty, but measured_on says \"{}\"; give the measured rows or "
                                  "set measured_on to \"{}\"", x.measured_on, kNotYetMeasured));
  if (!x.values.empty() && x.measured_on == kNotYetMeasured)
    r.error("measured_on", fmt::format("\"{}\", but values lists {} row(s); say where they were measured",
                                       kNotYetMeasured, x.values.size()));
  return x;
}

}  // namespace

std::string Override::stage() const {
  const auto colon = path.find(':');
  return colon == std::string::npos ? "" : path.substr(0, colon);
}

std::string Override::config_path() const {
  const auto colon = path.find(':');
  return colon == std::string::npos ? path : path.substr(colon + 1);
}

bool is_valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  }) && name != "." && name != "..";
}

namespace {
// The fields that state what the sweep is for: description, claim, command and expected values.
void read_statements(SweepSpec& spec, const Json& json, JsonReader& r, const std::string& source) {
  r.read("description", spec.description);
  if (!json.contains("description") || blank(spec.description))
    r.error("description", "missing or empty; say in a line what the sweep varies, how many runs "
                           "and how long they take where");
  r.read("claim", spec.claim);
  if (!json.contains("claim") || blank(spec.claim))
    r.error("claim", "missing or empty; state the paper's finding the sweep tests, citing its table "
                     "or figure");
  r.read("command", spec.command);
  if (!json.contains("command") || blank(spec.command))
    r.error("command", "missing or empty; give the exact command that reproduces the results");
  spec.expected = read_expected(json, source);
}

// base, merged over the recipe that "extends" names (if any).
void read_base(SweepSpec& spec, const Json& json, JsonReader& r, const std::string& source) {
  if (json.contains("extends")) {
    spec.recipe = read_recipe(json.at("extends"), source);
    spec.extends = true;
  }
  if (!json.contains("base") && !spec.extends)
    r.error("base", "missing; give a full run config (as `vitlab train` reads it), or \"extends\" "
                    "a recipe file and put only what differs in base");
  spec.own_base = json.value("base", Json::object());
  if (!spec.own_base.is_object())
    r.error("base", fmt::format("expected an object (a run config{}), got {}",
                                spec.extends ? ": what differs from the recipe" : "",
                                json_brief(spec.own_base)));
  r.child("base");
  if (spec.own_base.contains("seed"))
    config_error(source, "base.seed", "a run's seed comes from the sweep's \"seeds\" list; remove it here");
  spec.base = spec.extends ? merge_over_recipe(spec.recipe, spec.own_base) : spec.own_base;
}

void read_seeds(SweepSpec& spec, const Json& json, JsonReader& r, const std::string& source) {
  if (!json.contains("seeds")) r.error("seeds", "missing; give a list of seeds, e.g. [0, 1, 2]");
  r.read("seeds", spec.seeds, 0, std::numeric_limits<int64_t>::max());
  if (spec.seeds.empty()) r.error("seeds", "empty list; give at least one seed");
  for (size_t i = 0; i < spec.seeds.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (spec.seeds[i] == spec.seeds[j])
        config_error(source, fmt::format("seeds[{}]", i), fmt::format("seed {} is listed twice", spec.seeds[i]));
}

// grid: dotted path -> values, or a named axis -> alternatives (override sets).
void read_grid(SweepSpec& spec, const Json& json, JsonReader& r, const std::set<std::string>& stage_names,
               const std::string& source) {
  if (json.contains("grid")) {
    r.child("grid");  // type check
    const Json& grid = json.at("grid");
    for (auto it = grid.begin(); it != grid.end(); ++it) {
      const std::string at = "grid" + quoted(it.key());
      GridAxis axis{it.key(), {}, {}, {}};
      if (it.value().is_object()) {  // a named axis: alternatives that each set several paths
        if (!is_valid_name(it.key()) || it.key().find('.') != std::string::npos)
          config_error(source, at, "a named axis (an object of alternatives) takes a plain name "
                                   "like \"pooling\", not a config path; a path takes a list of values");
        if (it.value().empty()) config_error(source, at, "empty; give at least one alternative");
        for (auto alt = it.value().begin(); alt != it.value().end(); ++alt) {
          const std::string alt_at = at + quoted(alt.key());
          if (!is_valid_name(alt.key()))
            config_error(source, alt_at, "names may use only letters, digits, '.', '_' and '-' (they become run ids)");
          axis.names.push_back(alt.key());
          axis.bundles.push_back(read_overrides(alt.value(), alt_at, stage_names, true, source));
        }
        spec.grid.push_back(std::move(axis));
        continue;
      }
      check_override_path(it.key(), at, stage_names, true, source);
      if (!it.value().is_array())
        config_error(source, at, fmt::format("expected a list of values to try (or an object of "
                                             "named alternatives), got {}", json_brief(it.value())));
      if (it.value().empty()) config_error(source, at, "empty list; give at least one value");
      for (const auto& v : it.value()) axis.values.push_back(v);
      spec.grid.push_back(std::move(axis));
    }
  }
}

// The baseline every row is compared with: compare_to, or the only baseline.
void read_compare_to(SweepSpec& spec, JsonReader& r) {
  r.read("compare_to", spec.compare_to);
  if (spec.compare_to.empty()) {
    if (spec.baselines.size() > 1)
      r.error("compare_to", fmt::format("missing; there are {} baselines, name the one to compare with",
                                        spec.baselines.size()));
    spec.compare_to = spec.baselines.front().name;
  } else if (std::none_of(spec.baselines.begin(), spec.baselines.end(),
                          [&](const NamedOverrides& b) { return b.name == spec.compare_to; })) {
    r.error("compare_to", fmt::format("\"{}\" is not one of the baselines", spec.compare_to));
  }
}

void read_shared_axes(SweepSpec& spec, JsonReader& r, const std::string& source) {
  r.read("shared_axes", spec.shared_axes);
  std::sort(spec.shared_axes.begin(), spec.shared_axes.end());
  for (size_t i = 0; i < spec.shared_axes.size(); ++i) {
    const std::string& a = spec.shared_axes[i];
    if (std::none_of(spec.grid.begin(), spec.grid.end(), [&](const GridAxis& g) { return g.path == a; }))
      config_error(source, "shared_axes", fmt::format("\"{}\" is not a grid axis", a));
    if (i > 0 && spec.shared_axes[i - 1] == a)
      config_error(source, "shared_axes", fmt::format("\"{}\" is listed twice", a));
  }
}
}  // namespace

SweepSpec read_sweep_spec(const Json& json, const std::string& source, const std::string& name) {
  if (!json.is_object()) config_error(source, "", fmt::format("expected a sweep object, got {}", json_brief(json)));
  SweepSpec spec;
  spec.source = source;
  spec.name = name;
  spec.raw = json;
  check_keys(json, "", {"base", "baselines", "claim", "command", "compare_to", "description",
                        "expected", "extends", "grid", "seeds", "shared_axes", "stages", "variants"},
             source);
  JsonReader r(json, "", source);
  read_statements(spec, json, r, source);
  read_base(spec, json, r, source);
  read_seeds(spec, json, r, source);
  spec.stages = read_stages(json, source);
  std::set<std::string> stage_names;
  for (const auto& s : spec.stages) stage_names.insert(s.name);
  read_grid(spec, json, r, stage_names, source);
  spec.baselines = read_named(json, "baselines", stage_names, source);
  if (spec.baselines.empty())
    r.error("baselines", "missing or empty; name at least one baseline run (e.g. \"bit\": "
                         "{\"model.name\": \"bit_r26_28\"}) that the variants are compared with");
  spec.variants = read_named(json, "variants", stage_names, source);
  read_compare_to(spec, r);
  read_shared_axes(spec, r, source);
  return spec;
}

Json Expected::to_json() const {
  Json v = Json::object();
  for (const auto& [row, value] : values) v[row] = value;
  return Json{{"metric", metric}, {"values", v}, {"tolerance", tolerance}, {"measured_on", measured_on}};
}

SweepSpec read_sweep_file(const std::string& file) {
  return read_sweep_spec(read_json_file(file), file, std::filesystem::path(file).stem().string());
}

}  // namespace vitlab
