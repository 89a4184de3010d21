#include "core/cuda_util.h"

#include "core/compat.h"
#include "core/error.h"

#if VITLAB_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>

#include <optional>
#endif

namespace vitlab::cuda {
namespace {

std::shared_mutex& capture_mutex() {
  static std::shared_mutex m;
  return m;
}

}  // namespace

OutsideCapture::OutsideCapture() : lock_(capture_mutex()) {}

#if VITLAB_WITH_CUDA
bool built_with_cuda() {
  return true;
}

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

namespace {
// The caching allocator's bytes in use over all pools (index 0 is the aggregate).
auto allocated_bytes_stat(const torch::Device& device) {
  return c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index())
      .allocated_bytes[0];
}
}  // namespace

int64_t peak_memory_bytes(const torch::Device& device) {
  return device.is_cuda() ? allocated_bytes_stat(device).peak : 0;
}

int64_t allocated_memory_bytes(const torch::Device& device) {
  return device.is_cuda() ? allocated_bytes_stat(device).current : 0;
}

void reset_peak_memory(const torch::Device& device) {
  if (device.is_cuda())
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.index() < 0 ? 0 : device.index());
}

void set_device(const torch::Device& device) {
  if (device.is_cuda()) c10::cuda::set_device(device.index() < 0 ? 0 : device.index());
}

struct StreamMark::Impl {
  at::cuda::CUDAEvent event;
};

StreamMark::StreamMark(const torch::Device& device) : impl_(std::make_unique<Impl>()) {
  impl_->event.record(at::cuda::getCurrentCUDAStream(device.index() < 0 ? 0 : device.index()));
}

bool StreamMark::reached() const {
  return impl_->event.query();
}

void StreamMark::wait() const {
  impl_->event.synchronize();
}

struct Graph::Impl {
  at::cuda::CUDAGraph graph;
  std::optional<c10::cuda::CUDAStream> stream;

  // One side stream for the warm-up and the capture: cuBLAS keeps a workspace per stream, so
  // a fresh pool stream per call held one more each (~0.2 GB of peak memory on an H100).
  // Runs `work` on it, after the current stream's work, and waits for it.
  void run_on_side_stream(const torch::Device& device, const std::function<void()>& work) {
    c10::cuda::CUDAGuard device_guard(device);
    if (!stream) stream = at::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
    at::cuda::getCurrentCUDAStream(device.index()).synchronize();
    {
      c10::cuda::CUDAStreamGuard stream_guard(*stream);
      work();
    }
    stream->synchronize();
  }
};

Graph::Graph(bool thread_local_capture)
    : impl_(std::make_unique<Impl>()), thread_local_capture_(thread_local_capture) {}
Graph::~Graph() = default;

void Graph::warm_up(const torch::Device& device, const std::function<void()>& work) {
  impl_->run_on_side_stream(device, work);
}

void Graph::capture(const torch::Device& device, const std::function<void()>& work) {
  std::unique_lock<std::shared_mutex> alone(capture_mutex());
  impl_->run_on_side_stream(device, [&] {
#if VITLAB_TORCH_AT_LEAST(2, 1)
    impl_->graph.capture_begin({0, 0}, thread_local_capture_ ? cudaStreamCaptureModeThreadLocal
                                                             : cudaStreamCaptureModeGlobal);
#else
    impl_->graph.capture_begin();  // global mode only
#endif
    work();
    impl_->graph.capture_end();
  });
  captured_ = true;
}

void Graph::replay() {
  impl_->graph.replay();
}
#else
bool built_with_cuda() {
  return false;
}
void synchronize(const torch::Device&) {}
std::string device_name(const torch::Device& device) {
  return device.is_cuda() ? "cuda" : "cpu";
}
int64_t peak_memory_bytes(const torch::Device&) {
  return 0;
}
int64_t allocated_memory_bytes(const torch::Device&) {
  return 0;
}

void reset_peak_memory(const torch::Device&) {}
void set_device(const torch::Device& device) {
  if (device.is_cuda()) throw UserError("this vitlab was built without CUDA");
}
struct StreamMark::Impl {};
StreamMark::StreamMark(const torch::Device&) {
  throw UserError("this vitlab was built without CUDA");
}
bool StreamMark::reached() const {
  return true;
}
void StreamMark::wait() const {}
struct Graph::Impl {};
Graph::Graph(bool thread_local_capture) : thread_local_capture_(thread_local_capture) {}
Graph::~Graph() = default;
void Graph::capture(const torch::Device&, const std::function<void()>&) {
  throw UserError("CUDA graphs need a CUDA build of vitlab");
}
void Graph::warm_up(const torch::Device&, const std::function<void()>& work) {
  work();
}
void Graph::replay() {
  throw UserError("CUDA graphs need a CUDA build of vitlab");
}
#endif

// Both builds: Impl is complete here.
StreamMark::~StreamMark() = default;
StreamMark::StreamMark(StreamMark&&) noexcept = default;
StreamMark& StreamMark::operator=(StreamMark&&) noexcept = default;

}  // namespace vitlab::cuda
