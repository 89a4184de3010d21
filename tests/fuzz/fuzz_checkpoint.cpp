// Feeds load_checkpoint (`vitlab train --resume`, init_from a .pt file, `vitlab eval`): the input
// is the checkpoint, a LibTorch archive (a zip holding a pickle). LibTorch parses it, so this
// checks that whatever LibTorch makes of a corrupt file reaches the user as a vitlab::UserError;
// anything else is a bug.
#include "fuzz_util.h"
#include "train/checkpoint.h"

using namespace vitlab;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("last.pt", fuzz::as_string(data, size));
  try {
    load_checkpoint(path);
  } catch (const UserError&) {
  }
  return 0;
}
