// CUDA helpers that exist only in a CUDA build of LibTorch. In the CPU build they answer
// "no CUDA" (or throw when asked to do CUDA work), so callers need no #ifs.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>

namespace vitlab::cuda {

bool built_with_cuda();
void synchronize(const torch::Device& device);
std::string device_name(const torch::Device& device);    // "NVIDIA H200", or "cpu"
int64_t peak_memory_bytes(const torch::Device& device);  // caching allocator's peak allocation
int64_t allocated_memory_bytes(const torch::Device& device);  // what it holds allocated now
void reset_peak_memory(const torch::Device& device);
// Makes `device` the process's current CUDA device (NCCL and new streams use it).
void set_device(const torch::Device& device);

// The point reached by the work queued so far on `device`'s current stream (an event recorded
// there), which the host can test or wait for: when an asynchronous copy out of a host buffer is
// done with it.
class StreamMark {
 public:
  explicit StreamMark(const torch::Device& device);
  ~StreamMark();
  StreamMark(StreamMark&&) noexcept;
  StreamMark& operator=(StreamMark&&) noexcept;
  bool reached() const;  // without waiting
  void wait() const;     // blocks the calling thread until reached

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Held by a thread that makes CUDA calls beside the thread that runs the steps (the nvJPEG
// decoder's): a graph's capture waits until no thread holds it and keeps it while it records.
// While a capture runs in global mode CUDA refuses other threads' allocations, synchronisations
// and event queries, and such a call would also end the capture with an error.
class OutsideCapture {
 public:
  OutsideCapture();

 private:
  std::shared_lock<std::shared_mutex> lock_;
};

// A captured CUDA graph of some work; replay() reruns it on the same (static) tensors.
class Graph {
 public:
  // `thread_local_capture`: capture in cudaStreamCaptureModeThreadLocal, so that other threads
  // may query CUDA events meanwhile (the NCCL process group's watchdog does); the default global
  // mode makes such a query fail while any capture runs.
  explicit Graph(bool thread_local_capture = false);
  ~Graph();
  // Runs `work` eagerly on the graph's side stream and waits for it: the warm-up that capture
  // needs (cuBLAS workspaces and allocator pools set up on the stream that will be captured).
  void warm_up(const torch::Device& device, const std::function<void()>& work);
  // Runs `work` once under stream capture on that side stream (nothing executes: it is recorded).
  void capture(const torch::Device& device, const std::function<void()>& work);
  void replay();
  bool captured() const { return captured_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool thread_local_capture_ = false;
  bool captured_ = false;
};

}  // namespace vitlab::cuda
