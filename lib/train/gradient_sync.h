// The two engines behind DataParallel::gradient_sync (data_parallel.h), both averaging gradients
// over the ranks in buckets while the backward pass runs. Which one a run uses, and whether its
// step may be captured, is VITLAB_GRADIENT_SYNC's choice (DistEnv); README "Scaling" has their
// measured speeds.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "train/data_parallel.h"
#include "train/process_group.h"

// reducer.hpp includes distributed autograd's headers, which Debian's libtorch-dev leaves out.
#if defined(VITLAB_HAVE_C10D) && __has_include(<torch/csrc/distributed/autograd/context/context.h>)
#define VITLAB_HAVE_REDUCER 1
#endif

namespace vitlab {

// Whether this build has c10d's Reducer (make_reducer_sync); kNoReducer says why not.
bool reducer_available();
inline constexpr const char* kNoReducer =
    "VITLAB_GRADIENT_SYNC=reducer: this vitlab was built against a LibTorch whose headers lack what "
    "c10d's Reducer needs (Debian's libtorch-dev leaves out torch/csrc/distributed/autograd); "
    "unset it to use vitlab's buckets, or build against a PyTorch wheel";

#ifdef VITLAB_HAVE_C10D

// vitlab's buckets, filled from the parameters' gradient hooks (bucket_sync.cpp). On GPUs
// (`capture`) the backward pass with its NCCL all-reduces may be captured in the train step's
// CUDA graph.
std::unique_ptr<GradientSync> make_bucket_sync(const ProcessGroup& pg, int world_size,
                                               const std::vector<torch::Tensor>& params,
                                               int64_t bucket_bytes, bool capture);

// c10d::Reducer, the engine of PyTorch's DistributedDataParallel, with DDP's bucket plan
// (reducer_sync.cpp); on GPUs (`capture`) its step may be captured too. As DDP's default
// (find_unused_parameters off), every parameter must get a gradient in every step. UserError
// (kNoReducer) in a build without it.
std::unique_ptr<GradientSync> make_reducer_sync(const ProcessGroup& pg,
                                                const c10::intrusive_ptr<c10d::Store>& store,
                                                const DistEnv& env,
                                                const std::vector<torch::Tensor>& params,
                                                int64_t bucket_bytes, bool capture);

#endif  // VITLAB_HAVE_C10D

}  // namespace vitlab
