// Feeds read_npz (init_from or `vitlab import` of a JAX .npz checkpoint): the input is the zip
// archive. The zip directory's sizes and methods are untrusted; libzip parses them and vitlab
// decides what it may allocate. Anything else than a vitlab::UserError is a bug.
#include "formats/npz.h"
#include "fuzz_util.h"

using namespace vitlab;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("weights.npz", fuzz::as_string(data, size));
  try {
    read_npz(path);
  } catch (const UserError&) {
  }
  return 0;
}
