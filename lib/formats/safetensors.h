// The safetensors weight format (huggingface/safetensors): an 8-byte little-endian header length
// N, N bytes of JSON header, then the raw little-endian row-major tensor data. Files come from
// the internet, so the reader trusts nothing: every violation is an IoError naming the file, the
// tensor and the broken rule, and no allocation is sized by a number that was not checked
// against the file's real size.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace vitlab {

struct SafetensorsFile {
  // In data-section order; CPU tensors owning their memory.
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  std::map<std::string, std::string> metadata;  // the header's "__metadata__" (may be empty)

  // The tensor called `name`, or nullptr.
  const torch::Tensor* find(const std::string& name) const;
};

// Header length limit, as in the reference implementation.
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// Reads and validates a whole file. Supported dtypes: BOOL U8 I8 I16 F16 BF16 I32 F32 F64 I64
// (U16/U32/U64 and the F8 types are recognised but rejected: LibTorch 1.13 has no such types).
// Like the reference, the tensors must tile the data section exactly (no overlap, no gap, no
// trailing bytes).
SafetensorsFile read_safetensors(const std::string& path);

// Writes `tensors` (copied to contiguous CPU memory) and `metadata`, atomically. The layout
// matches the reference writer byte for byte: data sorted by dtype (widest first) then name,
// header keys in that order after "__metadata__", header padded with spaces to 8 bytes.
// Rejects duplicate names, the reserved name "__metadata__", undefined tensors and dtypes
// safetensors cannot hold.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace vitlab
