#include "core/cpu_runtime.h"

#include "core/cpu_block_cache.h"

#include <dlfcn.h>
#include <malloc.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <ATen/Parallel.h>

namespace vitlab {
int available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

namespace {

constexpr const char* kSpinCount = "10000";
// glibc serves larger blocks with mmap (this is the largest threshold it takes on 64-bit).
constexpr int kMmapThreshold = 32 << 20;

int positive_env_int(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) return 0;
  char* end = nullptr;
  const long n = std::strtol(value, &end, 10);
  return (*end == '\0' && n > 0 && n < 4096) ? int(n) : 0;
}

void set_blas_threads(int n) {
  // OpenBLAS (Debian's libopenblas0-pthread behind libblas.so.3) exports this; the reference BLAS
  // and MKL builds don't, and then there is nothing to set.
  using SetThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(n);
}

}  // namespace

void prepare_cpu_runtime(char** argv) {
  const char* mode = std::getenv("VITLAB_CPU_RUNTIME");
  if (mode && std::strcmp(mode, "off") == 0) return;  // for measuring what these settings buy
  if (!std::getenv("GOMP_SPINCOUNT")) {
    ::setenv("GOMP_SPINCOUNT", kSpinCount, 1);
    ::execv("/proc/self/exe", argv);  // returns only on failure: then run on with the default spin
  }
  // Freed tensors stay in the heap for the next step instead of going back to the kernel (glibc
  // would unmap blocks above a dynamic threshold and trim the heap top, faulting pages in again).
  ::mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
  ::mallopt(M_TRIM_THRESHOLD, 1 << 30);
  // Blocks glibc would still mmap (from kMmapThreshold on) are kept by the block cache instead,
  // up to a quarter of the machine's memory (core/cpu_block_cache.h).
  const int64_t memory = int64_t(::sysconf(_SC_PHYS_PAGES)) * int64_t(::sysconf(_SC_PAGE_SIZE));
  install_cpu_block_cache(kMmapThreshold, memory / 4);
}

std::string gomp_spincount() {
  const char* value = std::getenv("GOMP_SPINCOUNT");
  return value ? value : "";
}

int configure_cpu_threads(int requested) {
  int n = requested > 0 ? requested : positive_env_int("OMP_NUM_THREADS");
  if (n <= 0) n = available_cores();
  at::set_num_threads(n);
  set_blas_threads(n);
  return n;
}

bool use_one_compute_thread_here() {
  // ATen sets a thread's OpenMP count from its global one on the thread's first parallel
  // operator; asking for it here does that first, so the setting below is not overwritten.
  (void)at::get_num_threads();
  // The OpenMP runtime ATen was linked with (libgomp for Debian's and PyTorch's builds), found at
  // run time as set_blas_threads finds OpenBLAS: linking one here could load a second runtime.
  using SetThreads = void (*)(int);
  auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (!fn) return false;
  fn(1);
  return at::get_num_threads() == 1;
}

}  // namespace vitlab
