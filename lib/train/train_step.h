// One optimisation step (forward, loss, backward, gradient clipping, update), eager or
// captured once as a CUDA graph and replayed. The graph path computes the same function; it
// removes the per-kernel launch cost that dominates small models on fast GPUs.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>

#include "config/train_config.h"
#include "core/cuda_util.h"
#include "models/classifier.h"
#include "ops/fast_kernels.h"
#include "train/data_parallel.h"
#include "train/objective.h"
#include "train/optimizer.h"

namespace vitlab {

// Scales all gradients so their global L2 norm is at most `max_norm`, without a host sync
// (unlike torch::nn::utils::clip_grad_norm_, which reads the norm back). Returns the norm.
torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

using StepOutput = ObjectiveOutput;

class TrainStep {
 public:
  // `fast_path` (CUDA only): the fast-kernels switch (ops/fast_kernels.h) is on while the step
  // exists, and the step is captured as a CUDA graph after `warmup_steps` eager steps (batches must keep one shape, which training's drop_last
  // guarantees; the graph also needs the fused optimiser).
  TrainStep(ImageClassifier model, Optimizer& optimizer, const TrainConfig& config,
            TrainObjective objective, torch::Device device, bool fast_path, int warmup_steps = 3);

  // images: (B, C, H, W) float normalised; targets: (B, K) soft targets (unused by the
  // masked-patch objective).
  StepOutput run(const torch::Tensor& images, const torch::Tensor& targets, double lr);
  bool graphed() const { return graph_ && graph_->captured(); }
  // Data-parallel: gradients are averaged across ranks during each backward pass. Before the
  // first step. NCCL's collectives are captured with the rest of the step; Gloo's run eagerly.
  void set_gradient_sync(GradientSync* sync);
  bool fast_kernels() const { return fast_kernels_ != nullptr; }

 private:
  // Forward (autocast when bf16), loss, backward, clipping, then `update` (the optimiser step).
  // The captured graph's copy of the images (see the definition for its dtype and layout).
  torch::Tensor graph_input_buffer(const torch::Tensor& images) const;
  StepOutput compute(const torch::Tensor& images, const torch::Tensor& targets,
                     const std::function<void()>& update);

  ImageClassifier model_;
  Optimizer& optimizer_;
  TrainConfig config_;
  TrainObjective objective_;
  torch::Device device_;
  bool use_graph_;
  int warmup_steps_;
  int64_t steps_ = 0;
  torch::Tensor lr_;  // float32 device scalar read by the update
  std::vector<torch::Tensor> params_;
  std::unique_ptr<ops::FastKernels> fast_kernels_;
  // The linear layers' weights and biases, cast to bf16 in one kernel per forward on the fast path.
  std::vector<torch::Tensor> linear_params_;
  // Graph path: static inputs and outputs.
  std::unique_ptr<cuda::Graph> graph_;
  GradientSync* sync_ = nullptr;
  torch::Tensor static_images_, static_targets_;
  StepOutput static_out_;
};

}  // namespace vitlab
