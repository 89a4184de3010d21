#include "train/train_step.h"

#include <map>
#include <optional>

#include "core/compat.h"
#include "models/layers.h"
#include "ops/linear.h"
#include "ops/weight_cast.h"
#include "train/evaluate.h"

namespace vitlab {

torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads, norms;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return torch::zeros({});
  // Per-gradient norms and the scaling in multi-tensor kernels where LibTorch has them (one
  // launch for all gradients, not one per parameter: a small ViT's step is launch-bound).
  for (const auto& norm : at::_foreach_norm(grads, 2)) norms.push_back(norm.to(torch::kFloat));
  auto total = torch::stack(norms).norm(2);
  // Same coefficient as PyTorch's clip_grad_norm_: max_norm / (norm + 1e-6), at most 1.
  auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  std::map<torch::ScalarType, std::vector<torch::Tensor>> by_dtype;
  for (auto& g : grads) by_dtype[g.scalar_type()].push_back(g);
  for (auto& [dtype, group] : by_dtype) compat::scale_all_(group, coef.to(dtype));
  return total;
}

TrainStep::TrainStep(ImageClassifier model, Optimizer& optimizer, const TrainConfig& config,
                     TrainObjective objective, torch::Device device, bool fast_path, int warmup_steps)
    : model_(std::move(model)),
      optimizer_(optimizer),
      config_(config),
      objective_(std::move(objective)),
      device_(device),
      use_graph_(fast_path && device.is_cuda() && cuda::built_with_cuda() && optimizer.fused()),
      warmup_steps_(warmup_steps) {
  lr_ = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat).device(device));
  params_ = model_->parameters();
  // The fast path's hand-written kernels (CUDA only; they compute the same function).
  if (fast_path && device.is_cuda() && cuda::built_with_cuda()) {
    fast_kernels_ = std::make_unique<ops::FastKernels>(true);
    // Their tables exist before any step is captured, however few eager steps come first.
    ops::prepare_fast_linears(device);
    for (const auto& module : model_->modules())
      if (const auto linear = std::dynamic_pointer_cast<LinearImpl>(module)) {
        linear_params_.push_back(linear->weight);
        if (linear->bias.defined()) linear_params_.push_back(linear->bias);
      }
  }
  if (use_graph_) graph_ = std::make_unique<cuda::Graph>();
}

void TrainStep::set_gradient_sync(GradientSync* sync) {
  sync_ = sync;
  if (!sync || !use_graph_) return;
  if (!sync->capturable()) {
    use_graph_ = false;
    graph_.reset();
    return;
  }
  // NCCL's watchdog thread queries its events while the step is captured: capture in
  // thread-local mode, where that is allowed.
  graph_ = std::make_unique<cuda::Graph>(/*thread_local_capture=*/true);
}

torch::Tensor TrainStep::graph_input_buffer(const torch::Tensor& images) const {
  if (config_.precision != Precision::kBf16 || images.dim() != 4) return images.clone();
  // Under bf16 autocast the first layer (a convolution or the patch matmul) casts the images to
  // bf16 anyway, and cuDNN wants them channels-last: a buffer in that dtype and layout is half a
  // float32 copy, and the stem convolution saves it instead of a converted copy of its own
  // (BiT-R50x1 at batch 256: 0.2 GiB less peak memory). Each replay's copy_ does the cast.
  return images.to(torch::kBFloat16).contiguous(at::MemoryFormat::ChannelsLast);
}

StepOutput TrainStep::compute(const torch::Tensor& images, const torch::Tensor& targets,
                              const std::function<void()>& update) {
  StepOutput out;
  {
    // The linear layers' bf16 weights for this forward, cast in one kernel (ops/linear.h takes
    // them from the scope) instead of one cast per weight and bias.
    std::optional<ops::Bf16CastScope> casts;
    if (config_.precision == Precision::kBf16 && fast_kernels_) casts.emplace(linear_params_);
    out = objective_(*model_, images, targets);  // forward (autocast when bf16) and loss
  }
  if (sync_) sync_->begin_backward();
  out.loss.backward();
  if (sync_) sync_->finish_backward();  // the mean gradient over every rank's share of the batch
  if (config_.grad_clip > 0) clip_grad_norm(params_, config_.grad_clip);
  update();
  out.loss = out.loss.detach();
  if (out.logits.defined()) out.logits = out.logits.detach();
  return out;
}

StepOutput TrainStep::run(const torch::Tensor& images, const torch::Tensor& targets, double lr) {
  ++steps_;
  if (!device_.is_cuda()) {
    // CPU: the host optimiser with the double lr (a float32 device scalar would round it).
    optimizer_.zero_grad();
    return compute(images, targets, [&] { optimizer_.step(lr); });
  }
  const auto device_update = [this] { optimizer_.step_on_device(lr_); };
  lr_.fill_(lr);
  if (!use_graph_ || steps_ <= warmup_steps_) {
    optimizer_.zero_grad();
    StepOutput out;
    if (use_graph_) {
      // Warm-up on the stream the capture will use (cuBLAS workspaces, allocator).
      graph_->warm_up(device_, [&] { out = compute(images, targets, device_update); });
    } else {
      out = compute(images, targets, device_update);
    }
    return out;
  }
  if (!graph_->captured()) {
    static_images_ = graph_input_buffer(images);
    static_targets_ = targets.defined() ? targets.clone() : targets;  // none: masked patches
    // Gradients are created inside the capture (in the graph's memory pool) and then reused:
    // every replay overwrites them, so they are never zeroed outside.
    optimizer_.zero_grad();
    graph_->capture(device_,
                    [&] { static_out_ = compute(static_images_, static_targets_, device_update); });
  } else {
    static_images_.copy_(images);
    if (targets.defined()) static_targets_.copy_(targets);
  }
  graph_->replay();
  return static_out_;
}

}  // namespace vitlab
