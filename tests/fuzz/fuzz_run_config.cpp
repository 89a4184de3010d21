// Feeds `vitlab train CONFIG --set ...`: the input up to its first NUL byte is the config file,
// each NUL-separated piece after it one `--set key=value`. The repository's recipe lies beside the
// file as recipes/fmnist.json, so "extends" reaches the merge and its error paths. A config that
// loads must also survive the trip through its resolved JSON (what run folders and checkpoints
// store and a resume reads back); anything else than a vitlab::UserError is a bug.
#include <filesystem>

#include "config/recipe.h"
#include "fuzz_util.h"
#include "models/parts.h"

using namespace vitlab;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_torch();
  install_model_part_checks();
  std::filesystem::create_directories(fuzz::scratch_dir() + "/recipes");
  std::filesystem::copy_file(VITLAB_SOURCE_DIR "/experiments/recipes/fmnist.json",
                             fuzz::scratch_dir() + "/recipes/fmnist.json");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> parts = fuzz::split(fuzz::as_string(data, size), '\0');
  const std::string file = fuzz::write_file("run.json", parts[0]);
  const std::vector<std::string> sets(parts.begin() + 1, parts.end());
  RunConfig config;
  try {
    config = load_run_config(file, sets);
  } catch (const UserError&) {
    return 0;
  }
  const Json resolved = config.to_json();
  if (read_run_config(resolved, "resolved").to_json() != resolved) std::abort();
  return 0;
}
