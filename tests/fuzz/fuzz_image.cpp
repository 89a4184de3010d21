// Feeds the image-folder decoder (decode_image_file: libjpeg-turbo for JPEGs, stb_image for PNGs,
// both after vitlab's own checks): the first byte picks the channel count asked for (the file's
// own, 1 or 3, as read_image_folder asks), the rest is one .png/.jpg file. stb is C code that
// trusts headers, so this is where sizes and truncation are most likely to go wrong. Anything
// else than a vitlab::UserError is a bug. The same bytes go through nvjpeg_may_take, the marker
// scan that picks the files data.decoder "nvjpeg" sends to the device (it answers yes or no, and
// must read nothing outside the file).
#include "data/image_folder.h"
#include "data/nvjpeg_decoder.h"
#include "fuzz_util.h"

using namespace vitlab;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int channels[] = {0, 1, 3};
  const std::string path = fuzz::write_file("image.png", fuzz::as_string(data + 1, size - 1));
  const std::vector<uint8_t> bytes(data + 1, data + size);
  if (nvjpeg_may_take(bytes) && (bytes.size() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8))
    __builtin_trap();  // it takes only JPEGs
  try {
    decode_image_file(path, channels[data[0] % 3]);
  } catch (const UserError&) {
  }
  return 0;
}
