// The c10d pieces that data-parallel training stands on (data_parallel.h uses them; nothing else
// does): the rendezvous store, and the process group of the device's backend: Gloo for CPU
// tensors, NCCL for CUDA tensors (NCCL is what PyTorch uses between GPUs: NVLink, InfiniBand).
#pragma once
#include <torch/torch.h>

#include <chrono>
#include <string>

#if __has_include(<torch/csrc/distributed/c10d/TCPStore.hpp>)
#define VITLAB_HAVE_C10D 1
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

#include "core/compat.h"
#include "train/data_parallel.h"

namespace vitlab {

#ifdef VITLAB_HAVE_C10D

struct ProcessGroup {
  c10::intrusive_ptr<compat::DistBackend> group;
  // Where its collectives' tensors must live: the CPU (Gloo) or this rank's GPU (NCCL).
  torch::Device device{torch::kCPU};
  // After the last collective (true: a clean end; false: on an error, without waiting for
  // collectives that may never finish). NCCL: ends its watchdog thread and communicators.
  std::function<void(bool clean)> shut_down;
};

// A client of the store at MASTER_ADDR:MASTER_PORT, or (`serve`) its server, under the run's key
// prefix. Connecting fails after `timeout`.
c10::intrusive_ptr<c10d::Store> connect_store(const DistEnv& env, bool serve,
                                              std::chrono::milliseconds timeout);

// The group of WORLD_SIZE ranks for tensors on `device`. UserError when this LibTorch lacks the
// backend. Gloo connects every pair of ranks here (failing after `timeout`); NCCL connects at the
// first collective.
ProcessGroup make_process_group(const c10::intrusive_ptr<c10d::Store>& store, const DistEnv& env,
                                torch::Device device, std::chrono::milliseconds timeout);

// Waits for a collective. One that fails has lost a rank (it stopped, or the network between
// them failed): std::runtime_error saying so, and what to do, around the backend's message.
void wait_for_collective(const c10::intrusive_ptr<c10d::Work>& work);

#endif  // VITLAB_HAVE_C10D

}  // namespace vitlab
