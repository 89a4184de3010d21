// CPU thread settings: an explicit count wins, then OMP_NUM_THREADS (how the sweep runner splits
// cores between parallel runs), then every core; ATen and OpenBLAS get the same count.
#include <ATen/Parallel.h>
#include <catch2/catch.hpp>
#include <dlfcn.h>
#include <sys/resource.h>
#include <torch/torch.h>
#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#include <thread>

#include "core/cpu_block_cache.h"
#include "core/cpu_runtime.h"

using vitlab::configure_cpu_threads;

namespace {
int blas_threads() {
  using GetThreads = int (*)();
  auto fn = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return fn ? fn() : -1;  // -1: not OpenBLAS, nothing to check
}

struct RestoreThreads {
  int before = at::get_num_threads();
  ~RestoreThreads() { configure_cpu_threads(before); }
};
}  // namespace

TEST_CASE("configure_cpu_threads: explicit, then OMP_NUM_THREADS, then all cores", "[core]") {
  RestoreThreads restore;
  const char* saved = std::getenv("OMP_NUM_THREADS");
  const std::string saved_value = saved ? saved : "";

  CHECK(configure_cpu_threads(1) == 1);
  CHECK(at::get_num_threads() == 1);
  if (blas_threads() != -1) CHECK(blas_threads() == 1);

  ::setenv("OMP_NUM_THREADS", "3", 1);
  CHECK(configure_cpu_threads(0) == 3);
  CHECK(at::get_num_threads() == 3);
  if (blas_threads() != -1) CHECK(blas_threads() == 3);
  CHECK(configure_cpu_threads(2) == 2);  // the config's explicit count wins over the variable

  ::setenv("OMP_NUM_THREADS", "lots", 1);  // not a count: ignored, every core
  const int all = configure_cpu_threads(0);
  CHECK(all >= 1);
  CHECK(all <= int(std::max(1u, std::thread::hardware_concurrency())));

  if (saved) ::setenv("OMP_NUM_THREADS", saved_value.c_str(), 1);
  else ::unsetenv("OMP_NUM_THREADS");
}

TEST_CASE("one compute thread for the calling thread only", "[core]") {
  RestoreThreads restore;
  configure_cpu_threads(3);
  int inside = 0;
  bool set = false;
  std::thread([&] {
    set = vitlab::use_one_compute_thread_here();
    inside = at::get_num_threads();
  }).join();
  CHECK(set);  // Debian's LibTorch and PyTorch's wheels are built on OpenMP
  CHECK(inside == 1);
  CHECK(at::get_num_threads() == 3);  // this thread keeps its team
  int fresh = 0;  // a thread that did not ask starts from the global count
  std::thread([&] { fresh = at::get_num_threads(); }).join();
  CHECK(fresh == 3);
}

TEST_CASE("the CPU block cache hands a freed large block out again, without page faults", "[core]") {
  // What prepare_cpu_runtime installs in train, eval, sweep and bench (core/cpu_block_cache.h).
  if (!vitlab::install_cpu_block_cache(32 << 20, int64_t(1) << 30)) return;  // LibTorch 2.x: not installed
  const auto minor_faults = [] {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
  };
  const int64_t floats = (100 << 20) / 4;  // 100 MB: glibc would mmap it afresh every time
  void* first_address = nullptr;
  {
    const auto first = torch::ones({floats});
    first_address = first.data_ptr();
  }
  const auto before = vitlab::cpu_block_cache_stats();
  CHECK(before.installed);
  CHECK(before.cached_bytes >= 100 << 20);
  const long faults = minor_faults();
  {
    const auto second = torch::ones({floats});
    CHECK(second.data_ptr() == first_address);
    CHECK(second[floats - 1].item<float>() == 1.0f);
    CHECK(vitlab::cpu_block_cache_stats().cached_bytes == before.cached_bytes - (100 << 20));
  }
  // Freshly mapped, its 25,600 pages of 4 KB would each fault (and be zeroed by the kernel).
  CHECK(minor_faults() - faults < 256);
  const auto after = vitlab::cpu_block_cache_stats();
  CHECK(after.hits == before.hits + 1);
  CHECK(after.cached_bytes == before.cached_bytes);
  // Small blocks stay with the default allocator, raw allocations included (ATen's scratch).
  const int64_t misses = after.misses;
  void* raw = c10::GetCPUAllocator()->raw_allocate(1 << 20);
  c10::GetCPUAllocator()->raw_deallocate(raw);
  void* large = c10::GetCPUAllocator()->raw_allocate(40 << 20);
  c10::GetCPUAllocator()->raw_deallocate(large);
  CHECK(vitlab::cpu_block_cache_stats().misses + vitlab::cpu_block_cache_stats().hits ==
        misses + after.hits + 1);
}
