// Feeds `vitlab sweep FILE --dry-run`: the input is the sweep file, read and then planned (every
// run's config resolved and validated), which is all that happens before anything trains. The
// repository's recipe lies beside it as recipes/fmnist.json for "extends". Anything else than a
// vitlab::UserError is a bug.
#include <filesystem>

#include "experiment/plan.h"
#include "experiment/sweep_spec.h"
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
  const std::string file = fuzz::write_file("sweep.json", fuzz::as_string(data, size));
  try {
    const SweepSpec spec = read_sweep_file(file);
    plan_sweep(spec, fuzz::scratch_dir() + "/out");
  } catch (const UserError&) {
  }
  return 0;
}
