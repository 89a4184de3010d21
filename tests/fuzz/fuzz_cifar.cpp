// Feeds the CIFAR-10/100 binary reader. Input: a flags byte (bit 0: CIFAR-100, bit 1: write a
// class names file), a byte giving the names file's length, that many bytes of names, then one
// batch file's bytes, written as every batch file of the layout. The names file is user text
// too. Anything else than a vitlab::UserError is a bug.
#include <filesystem>

#include "data/cifar_reader.h"
#include "fuzz_util.h"

using namespace vitlab;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const bool cifar100 = data[0] & 1, with_names = data[0] & 2;
  const size_t names_size = std::min<size_t>(data[1], size - 2);
  const std::string names = fuzz::as_string(data + 2, names_size);
  const std::string batch = fuzz::as_string(data + 2 + names_size, size - 2 - names_size);
  const std::string folder = cifar100 ? "cifar100" : "cifar10";
  const std::string names_file = cifar100 ? "fine_label_names.txt" : "batches.meta.txt";
  const std::vector<std::string> batches =
      cifar100
          ? std::vector<std::string>{"train.bin", "test.bin"}
          : std::vector<std::string>{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                     "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  for (const auto& b : batches) fuzz::write_file(folder + "/" + b, batch);
  const std::string names_path = fuzz::scratch_dir() + "/" + folder + "/" + names_file;
  if (with_names)
    fuzz::write_file(folder + "/" + names_file, names);
  else
    std::filesystem::remove(names_path);
  try {
    const std::string path = fuzz::scratch_dir() + "/" + folder;
    if (cifar100)
      read_cifar100(path);
    else
      read_cifar10(path);
  } catch (const UserError&) {
  }
  return 0;
}
