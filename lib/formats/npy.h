// NumPy's .npy array format (numpy/lib/format.py), read strictly: magic "\x93NUMPY", version
// 1.0/2.0/3.0, a little-endian header length, then a Python dict literal with exactly 'descr',
// 'fortran_order' and 'shape', parsed by a small grammar (never evaluated), then the raw data.
// Used on its own and for the entries of .npz archives (the JAX ViT checkpoints).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>

namespace vitlab {

// Reads up to `n` bytes into `dst`; returns how many were read (0 at the end). Throws IoError on
// a read error.
using NpyReadFn = std::function<uint64_t(void* dst, uint64_t n)>;

// Header length limit: numpy's own readers refuse headers over 10000 bytes by default; a
// plain (non-structured) array never needs more.
constexpr uint64_t kNpyMaxHeaderBytes = 65536;

// Reads one array of exactly `entry_size` bytes through `read`. `where` prefixes every error
// message (e.g. `ckpt.npz: entry "Transformer/encoder_norm/bias.npy"`). Supported descr:
// |b1 |u1 |i1 <i2 <i4 <i8 <f2 <f4 <f8 (byte order '<' or, for one-byte types, '|'). Fortran-order
// data is transposed into a C-contiguous tensor. Allocates only after the header's size agrees
// with `entry_size`, and checks that exactly that many bytes arrive.
torch::Tensor read_npy(const NpyReadFn& read, uint64_t entry_size, const std::string& where);

// Parses a whole .npy held in memory.
torch::Tensor decode_npy(const std::string& bytes, const std::string& where);

// A standalone .npy file.
torch::Tensor read_npy_file(const std::string& path);

// The .npy encoding of `tensor` (copied to contiguous CPU memory) as numpy writes it: version
// 1.0 (2.0 for huge headers), header padded to a 64-byte boundary. BFloat16 and other types
// with no numpy equivalent are rejected with an IoError that starts with `where`.
std::string encode_npy(const torch::Tensor& tensor, const std::string& where);

}  // namespace vitlab
