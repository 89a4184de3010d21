// Little-endian integers inside file bytes (zip, pickle, safetensors and .npy headers), read
// byte by byte so that neither alignment nor the host's byte order matters.
#pragma once
#include <cstdint>

namespace vitlab {

// The `bytes`-byte (1 to 8) little-endian unsigned integer at `p`.
inline uint64_t read_le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace vitlab
