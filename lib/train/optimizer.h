// AdamW and SGD with momentum over parameter groups (weight decay on or off per parameter).
// vitlab keeps its own optimiser instead of torch::optim so that its state is plain named
// tensors (checkpoints), the step count lives on the device (CUDA-graph replays), and the
// CUDA build can switch to ATen's fused multi-tensor kernels.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "config/train_config.h"
#include "models/classifier.h"

namespace vitlab {

struct OptimizerParam {
  std::string name;
  torch::Tensor param;
  bool decay;  // WeightDecayRule: false for 1-D tensors and what a module declares exempt
};

// The model's parameters in order, each with its weight-decay choice: the one place that decides
// which parameters decay (training and `vitlab bench` both build their optimiser from it).
std::vector<OptimizerParam> parameter_groups(const ImageClassifierImpl& model);

class Optimizer {
 public:
  // `allow_fused`: use ATen's fused kernels on CUDA when this LibTorch has them (fast path).
  Optimizer(std::vector<OptimizerParam> params, const TrainConfig& config, bool allow_fused = true);

  // One update with learning rate `lr` from the parameters' current .grad().
  void step(double lr);
  // The same update with the learning rate read from a float32 device scalar and no host
  // synchronisation, so it can be captured in a CUDA graph. Uses ATen's fused multi-tensor
  // kernels where available (CUDA, LibTorch >= 2.4), else the per-tensor path.
  void step_on_device(const torch::Tensor& lr);
  // Whether step_on_device() runs fused kernels for these parameters.
  bool fused() const { return fused_; }
  void zero_grad();
  int64_t steps_taken() const;

  // Named state tensors (moments, momentum buffers, step count) for checkpoints.
  std::vector<std::pair<std::string, torch::Tensor>> state() const;
  // Restores state() output; IoError if names or shapes differ.
  void load_state(const std::vector<std::pair<std::string, torch::Tensor>>& state);

  const std::vector<OptimizerParam>& params() const { return params_; }

 private:
  std::vector<OptimizerParam> params_;
  TrainConfig config_;
  std::vector<torch::Tensor> exp_avg_, exp_avg_sq_;  // AdamW
  std::vector<torch::Tensor> momentum_;              // SGD
  torch::Tensor step_count_;                          // float32 scalar on the parameters' device
  int64_t host_steps_ = 0;
  bool fused_ = false;
  // Fused-kernel views: parameters split by decay, with their state, grads bound at first use.
  struct Group {
    std::vector<size_t> index;
    double weight_decay;
  };
  std::vector<Group> groups_;
};

}  // namespace vitlab
