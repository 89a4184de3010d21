#include "train/process_group.h"

#include <fmt/ranges.h>

#include <algorithm>

#include "core/cuda_util.h"
#include "core/error.h"

// c10d's Gloo group needs Gloo's headers too (Debian: libgloo-dev; the PyTorch wheels leave them
// out). ProcessGroupGloo.hpp and ProcessGroupNCCL.hpp declare their groups only under
// USE_C10D_GLOO / USE_C10D_NCCL, which Torch's CMake package defines when its LibTorch has them.
#if defined(VITLAB_HAVE_C10D) && defined(USE_C10D_GLOO) && __has_include(<gloo/algorithm.h>) && \
    __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>)
#define VITLAB_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(VITLAB_HAVE_C10D) && defined(USE_C10D_NCCL) && VITLAB_WITH_CUDA && \
    __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#define VITLAB_HAVE_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace vitlab {

std::string data_parallel_backends() {
  std::vector<std::string> names;
#ifdef VITLAB_HAVE_GLOO
  names.push_back("gloo");
#endif
#ifdef VITLAB_HAVE_NCCL
  names.push_back("nccl");
#endif
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "));
}

#ifdef VITLAB_HAVE_C10D

c10::intrusive_ptr<c10d::Store> connect_store(const DistEnv& env, bool serve,
                                              std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions options;
  options.port = uint16_t(env.master_port);
  options.isServer = serve;
  if (serve) options.numWorkers = size_t(env.world_size);
  options.waitWorkers = false;
  options.timeout = timeout;
  auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
  return c10::make_intrusive<c10d::PrefixStore>(env.store_prefix, tcp);
}

ProcessGroup make_process_group(const c10::intrusive_ptr<c10d::Store>& store, const DistEnv& env,
                                torch::Device device, std::chrono::milliseconds timeout) {
  if (device.is_cuda()) {
#ifdef VITLAB_HAVE_NCCL
    cuda::set_device(device);  // NCCL's communicator and streams belong to this rank's GPU
    auto options = c10d::ProcessGroupNCCL::Options::create();
    // NCCL's watchdog ends the process (SIGABRT) when a collective waits longer than this. A rank
    // that died is reported sooner, and clearly, by the rank monitor (rank_monitor.h) after
    // `timeout`; this bound is for a rank that lives but hangs, and must not catch a slow one
    // (rank 0 writing a large checkpoint while the others wait): at least 30 minutes.
    options->timeout = std::max<std::chrono::milliseconds>(2 * timeout, std::chrono::minutes(30));
    auto nccl =
        c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, options);
    return {nccl, device, [nccl](bool clean) { clean ? nccl->shutdown() : nccl->abort(); }};
#else
    throw UserError(
        "this vitlab was built against a LibTorch without c10d's NCCL group, so it cannot "
        "train data-parallel on GPUs; build it against a PyTorch wheel with CUDA");
#endif
  }
#ifdef VITLAB_HAVE_GLOO
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, options);
  return {gloo, torch::Device(torch::kCPU), [](bool) {}};
#else
  throw UserError(
      "this vitlab was built against a LibTorch without c10d's Gloo headers, so it cannot "
      "train data-parallel on CPU; rebuild where they exist (Debian: libgloo-dev), or "
      "train on GPUs (NCCL)");
#endif
}

void wait_for_collective(const c10::intrusive_ptr<c10d::Work>& work) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format(
        "a data-parallel collective failed: another rank stopped or cannot be reached (resume the run "
        "on every rank with --resume): {}",
        e.what()));
  }
}

#endif  // VITLAB_HAVE_C10D

}  // namespace vitlab
