#include "core/cuda_util.h"

#include "core/error.h"

#if VITLAB_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace vitlab::cuda {

#if VITLAB_WITH_CUDA
bool built_with_cuda() { return true; }

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) {
    c10::cuda::CUDAGuard guard(device);
    c10::cuda::device_synchronize();
  }
}

std::string device_name(const torch::Device& device) {
  if (!device.is_cuda()) return "cpu";
  return at::cuda::getDeviceProperties(device.index() < 0 ? 0 : device.index())->name;
}

int64_t peak_memory_bytes(const torch::Device& device) {
  if (!device.is_cuda()) return 0;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
  return stats.allocated_bytes[0].peak;  // aggregate over pools
}

void reset_peak_memory(const torch::Device& device) {
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index() < 0 ? 0 : device.index());
}

struct Graph::Impl {
  at::cuda::CUDAGraph graph;
};

Graph::Graph() : impl_(std::make_unique<Impl>()) {}
Graph::~Graph() = default;

void Graph::capture(const torch::Device& device, const std::function<void()>& work) {
  c10::cuda::CUDAGuard device_guard(device);
  auto stream = at::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
  stream.synchronize();
  {
    c10::cuda::CUDAStreamGuard stream_guard(stream);
    impl_->graph.capture_begin();
    work();
    impl_->graph.capture_end();
  }
  stream.synchronize();
  captured_ = true;
}

void Graph::replay() { impl_->graph.replay(); }

void run_on_side_stream(const torch::Device& device, const std::function<void()>& work) {
  c10::cuda::CUDAGuard device_guard(device);
  auto current = at::cuda::getCurrentCUDAStream(device.index());
  auto side = at::cuda::getStreamFromPool(false, device.index());
  side.synchronize();
  current.synchronize();
  {
    c10::cuda::CUDAStreamGuard stream_guard(side);
    work();
  }
  side.synchronize();
}
#else
bool built_with_cuda() { return false; }
void synchronize(const torch::Device&) {}
std::string device_name(const torch::Device& device) { return device.is_cuda() ? "cuda" : "cpu"; }
int64_t peak_memory_bytes(const torch::Device&) { return 0; }
void reset_peak_memory(const torch::Device&) {}
struct Graph::Impl {};
Graph::Graph() = default;
Graph::~Graph() = default;
void Graph::capture(const torch::Device&, const std::function<void()>&) {
  throw UserError("CUDA graphs need a CUDA build of vitlab");
}
void Graph::replay() { throw UserError("CUDA graphs need a CUDA build of vitlab"); }
void run_on_side_stream(const torch::Device&, const std::function<void()>& work) { work(); }
#endif

}  // namespace vitlab::cuda
