// CPU thread settings: an explicit count wins, then OMP_NUM_THREADS (how the sweep runner splits
// cores between parallel runs), then every core; ATen and OpenBLAS get the same count.
#include <ATen/Parallel.h>
#include <catch2/catch.hpp>
#include <dlfcn.h>

#include <cstdlib>
#include <thread>

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
