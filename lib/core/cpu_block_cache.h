// A CPU allocator that keeps freed large blocks for the next request of the same size.
//
// glibc serves every block above 32 MB with its own mmap and unmaps it when it is freed, so a
// training step whose activations are that large faults every page of them in again, zeroed by
// the kernel, at every step: bit_r26_28 (28x28 maps at width 256: 103 MB per activation at batch
// 128) spent 20% of its step in the kernel's clear_page (perf) and trained at 41 img/s at batch 128
// against 64 at batch 32 (record cpu-conv-2026-11-29). Turning glibc's mmap off does not help:
// ATen's 64-byte-aligned blocks do not fit the freed ones, and the heap grows. A training step asks
// for the same sizes at every step, so blocks are kept by exact size and handed out again. A block
// of a size never asked for again stays cached (up to the cap) until the process ends.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vitlab {

struct CpuBlockCacheStats {
  int64_t hits = 0;          // requests served from the cache
  int64_t misses = 0;        // requests of a cacheable size that were allocated afresh
  int64_t cached_bytes = 0;  // freed blocks held now
  bool installed = false;
};

// Makes the cache ATen's CPU allocator (once; later calls change nothing). Blocks of at least
// `min_bytes` are kept when freed, while the cache holds at most `max_bytes`; smaller blocks, and
// blocks that would overflow it, go to the default allocator as before. LibTorch 1.13's allocator
// interface only (the CPU build); elsewhere it returns false and installs nothing.
bool install_cpu_block_cache(int64_t min_bytes, int64_t max_bytes);

CpuBlockCacheStats cpu_block_cache_stats();

}  // namespace vitlab
