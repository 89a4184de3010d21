// CIFAR-10 and CIFAR-100 in their binary distribution format ("CIFAR-10 binary version").
#pragma once
#include <string>

#include "data/dataset.h"

namespace vitlab {

// CIFAR-10: data_batch_1.bin .. data_batch_5.bin and test_batch.bin, records of 1 label byte +
// 3072 image bytes (R, G, B planes of 32x32). Class names from batches.meta.txt if present.
// `folder` may also be the folder that contains cifar-10-batches-bin/ (the tarball's layout).
DatasetSplits read_cifar10(const std::string& folder);

// CIFAR-100: train.bin and test.bin, records of coarse + fine label bytes + 3072 image bytes;
// the fine labels (100 classes) are used. Class names from fine_label_names.txt if present.
// `folder` may also contain cifar-100-binary/.
DatasetSplits read_cifar100(const std::string& folder);

}  // namespace vitlab
