// Feeds the MNIST-format reader (fashion-mnist and mnist-format data): the input's first two
// bytes (little-endian) are the image file's length, then the image file, then the label file.
// They are written as both the train and the t10k pair, raw or gzip as the bytes say, and read
// with read_mnist_format. This covers the gzip inflater (sizes, bombs, concatenated members),
// the IDX header and the pair checks. Anything else than a vitlab::UserError is a bug.
#include "data/idx_reader.h"
#include "fuzz_util.h"

using namespace vitlab;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string rest = fuzz::as_string(data + 2, size - 2);
  const size_t cut = std::min<size_t>(data[0] | data[1] << 8, rest.size());
  const std::string images = rest.substr(0, cut), labels = rest.substr(cut);
  for (const char* split : {"train", "t10k"}) {
    fuzz::write_file(std::string("mnist/") + split + "-images-idx3-ubyte", images);
    fuzz::write_file(std::string("mnist/") + split + "-labels-idx1-ubyte", labels);
  }
  try {
    read_mnist_format(fuzz::scratch_dir() + "/mnist", /*fashion=*/false);
  } catch (const UserError&) {
  }
  return 0;
}
