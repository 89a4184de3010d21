// CPU runtime settings that decide whether the cores do work or wait for each other.
//
// Measured on the 2-core Debian machine (train_tiny ViT, batch 128, fp32; benchmark record
// cpu-2026-11-26 in benchmarks/records.jsonl): ATen's OpenMP pool and OpenBLAS' own pthreads both want every core.
// With libgomp's default spin-wait (300k spins) the idle OpenMP worker burns the core a BLAS thread
// needs: 700 img/s. One BLAS thread: 2,130. A short spin (GOMP_SPINCOUNT=10000): 2,850, and the
// BiT baseline keeps its OpenMP speed. glibc's default of returning freed blocks to the kernel cost
// another ~15% in page faults on every step.
#pragma once
#include <string>

namespace vitlab {

// The cores this process may run on (its CPU affinity; taskset and container limits shrink it).
int available_cores();

// Call before any compute, in commands that train or evaluate (apps/main.cpp's command table).
// libgomp reads GOMP_SPINCOUNT only when it is loaded, so when the variable is unset this sets it
// and re-executes the program once (a value the user set is kept). Also keeps freed memory in the
// process instead of unmapping it after every step: glibc's heap for blocks under 32 MB, and the
// block cache (core/cpu_block_cache.h) for larger ones. VITLAB_CPU_RUNTIME=off skips all of it.
void prepare_cpu_runtime(char** argv);

// The GOMP_SPINCOUNT this process runs with ("" when unset), for benchmark records.
std::string gomp_spincount();

// Threads for CPU compute: `requested` > 0, else OMP_NUM_THREADS when set (the sweep runner splits
// the cores between parallel runs that way), else every core this process may run on. Sets ATen's
// intra-op threads and OpenBLAS' threads alike and returns the number used.
int configure_cpu_threads(int requested);

// ATen's operators called from the calling thread then run on that thread alone instead of each
// opening an OpenMP team: for pools whose threads each take their own item (the streamed
// decoders), where teams of every core per thread oversubscribe the machine. OpenMP's thread
// count is per thread, so other threads keep theirs. False where ATen is not built on OpenMP.
bool use_one_compute_thread_here();

}  // namespace vitlab
