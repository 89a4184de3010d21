// Feeds read_safetensors (`vitlab import`, init_from a .safetensors file): the input is the file.
// Its header is JSON sized by an untrusted 8-byte length and names offsets into the data, so it
// is the weights format most exposed to lying sizes. Anything else than a vitlab::UserError is a
// bug.
#include "formats/safetensors.h"
#include "fuzz_util.h"

using namespace vitlab;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("weights.safetensors", fuzz::as_string(data, size));
  try {
    read_safetensors(path);
  } catch (const UserError&) {
  }
  return 0;
}
