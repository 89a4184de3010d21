// Feeds the WebDataset shard reader (data/tar_shards.h through list_image_split, as a run lists a
// split): the input is one .tar shard of a training split, and every sample listed is then read
// back through its byte range. Tar headers carry sizes, offsets and names the reader trusts only
// after checking. Anything else than a vitlab::UserError is a bug.
#include "data/file_listing.h"
#include "fuzz_util.h"

using namespace vitlab;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string shard = fuzz::write_file("shards/train/part-000.tar", fuzz::as_string(data, size));
  const std::string root = shard.substr(0, shard.size() - std::string("/train/part-000.tar").size());
  try {
    const FileListing l = list_image_split(root, "train", nullptr);
    for (int64_t i = 0; i < l.size(); ++i) l.read(i, uint64_t{1} << 20);
  } catch (const UserError&) {
  }
  return 0;
}
