// Run ids: readable, stable names derived from a run's overrides and seed, used as folder names.
//   grid point   pool=gap__pos_embed=learned_2d__seed=1
//   baseline     baseline=bit__seed=0        (with shared axes: baseline=bit__train_size=1000__seed=0)
//   variant      variant=gap__seed=0
//   no grid      base__seed=0
// Keys are the last component of the dotted path unless two grid paths share it (then the whole
// path); parts are in sorted path order, so the same sweep file always gives the same ids.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "config/json_reader.h"

namespace vitlab {

// Keeps [A-Za-z0-9._=-]; any other run of characters becomes one '_'; no leading/trailing '_'.
// (So "__", the separator between parts, never appears inside a part.)
std::string sanitize_id_part(const std::string& text);

// A value as it appears in an id: strings bare, everything else as compact JSON, sanitized.
std::string id_value_text(const Json& value);

// Short key per grid path: "model.pos_embed" -> "pos_embed", "finetune:train.lr" -> "finetune.lr";
// paths whose short keys collide keep their full (sanitized) path.
std::map<std::string, std::string> short_keys(const std::vector<std::string>& paths);

// "key=value" parts joined with "__"; overlong ids are cut and get a hash of the full text, so
// they stay unique and fit in a file name.
std::string join_id_parts(const std::vector<std::string>& parts);

std::string run_id(const std::string& variant_key, int64_t seed);

}  // namespace vitlab
