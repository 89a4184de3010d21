// IDX files (the MNIST format): big-endian header, then unsigned bytes. Reads Fashion-MNIST from
// the Debian package's folder and any folder in the same layout.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace vitlab {

// Where Debian's dataset-fashion-mnist package installs the files.
constexpr const char* kFashionMnistFolder = "/usr/share/datasets/fashion-mnist";
// Appended to "not found" messages for that folder.
constexpr const char* kFashionMnistHint =
    "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or "
    "set data.path";

// The unsigned-byte IDX tensor in `bytes` (the contents of `path`, already decompressed), of
// rank `expected_rank`, shaped as its header says. Throws DataError naming `path` on a bad magic
// number, a rank or type other than expected, zero-sized dimensions, or a header whose
// dimensions do not match the data size. Never allocates before the sizes are checked.
torch::Tensor parse_idx_ubyte(const std::vector<uint8_t>& bytes, int expected_rank,
                              const std::string& path);

// Reads train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte from `folder` (each either gzip-compressed with a .gz suffix or raw).
// Labels must be in [0, 10). `fashion` picks the Fashion-MNIST class names (else "0".."9") and
// the data set name. `hint` is appended to "not found" messages (e.g. which package to install).
DatasetSplits read_mnist_format(const std::string& folder, bool fashion,
                                const std::string& hint = "");

// Fashion-MNIST from `folder`; when empty, from kFashionMnistFolder (errors carry
// kFashionMnistHint) or, if that folder is missing, from third_party/staged/data/fashion-mnist in
// the source tree this was compiled from (where third_party/stage.sh copies the files).
DatasetSplits read_fashion_mnist(const std::string& folder = "");

}  // namespace vitlab
