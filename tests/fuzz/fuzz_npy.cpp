// Feeds decode_npy, the .npy parser that .npy files and every .npz entry go through: the input is
// one .npy. Its header is a Python dict literal parsed by a hand-written grammar. An array that
// decodes must also encode, and decode again to the same bytes (what `vitlab export` relies on).
// Anything else than a vitlab::UserError is a bug.
#include "formats/npy.h"
#include "fuzz_util.h"

using namespace vitlab;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  torch::Tensor array;
  try {
    array = decode_npy(fuzz::as_string(data, size), "fuzz.npy");
  } catch (const UserError&) {
    return 0;
  }
  const std::string encoded = encode_npy(array, "re-encoded");
  if (encode_npy(decode_npy(encoded, "re-encoded"), "again") != encoded) std::abort();
  return 0;
}
