// NumPy .npz archives: a zip of NAME.npy entries, as written by numpy.savez / savez_compressed.
// The original JAX ViT checkpoints (google-research/vision_transformer) are .npz files with names
// like "Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel". Read through libzip; every entry is
// parsed strictly by read_npy (formats/npy.h). Builds without libzip (the staged GPU build) compile,
// and these functions then throw IoError.
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace vitlab {

struct NpzFile {
  // In archive order, names without the ".npy" suffix; CPU tensors owning their memory.
  std::vector<std::pair<std::string, torch::Tensor>> tensors;

  // The tensor called `name`, or nullptr.
  const torch::Tensor* find(const std::string& name) const;
};

// Whether this build can read and write .npz (it was built with libzip).
bool npz_available();

// Reads every entry. Only stored and deflated entries (what numpy writes) are accepted; an
// entry's declared size must be plausible for its compressed size before anything is allocated,
// and the bytes that actually arrive (CRC-checked by libzip) must match it.
NpzFile read_npz(const std::string& path);

// Writes `arrays` as stored (uncompressed) NAME.npy entries, atomically. Rejects empty or
// duplicate names and dtypes .npy cannot hold (e.g. bfloat16).
void write_npz(const std::string& path,
               const std::vector<std::pair<std::string, torch::Tensor>>& arrays);

}  // namespace vitlab
