#include "train/optimizer.h"

#include <cmath>

#include "core/compat.h"
#include "core/error.h"

namespace vitlab {

std::vector<OptimizerParam> parameter_groups(const ImageClassifierImpl& model) {
  // Each module says which of its parameters weight decay skips (models/no_weight_decay.h).
  const WeightDecayRule decay(model);
  std::vector<OptimizerParam> params;
  for (const auto& p : model.named_parameters(true))
    params.push_back({p.key(), p.value(), decay.applies(p.value())});
  return params;
}

Optimizer::Optimizer(std::vector<OptimizerParam> params, const TrainConfig& config, bool allow_fused)
    : params_(std::move(params)), config_(config) {
  for (const auto& p : params_) {
    if (config_.optimizer == OptimizerKind::kAdamW) {
      exp_avg_.push_back(torch::zeros_like(p.param, torch::MemoryFormat::Preserve));
      exp_avg_sq_.push_back(torch::zeros_like(p.param, torch::MemoryFormat::Preserve));
    } else {
      momentum_.push_back(torch::zeros_like(p.param, torch::MemoryFormat::Preserve));
    }
  }
  auto device = params_.empty() ? torch::Device(torch::kCPU) : params_[0].param.device();
  step_count_ = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat).device(device));
#if VITLAB_HAS_FUSED_OPTIMIZERS
  fused_ = allow_fused && device.is_cuda();
#endif
  Group decay{{}, config_.weight_decay}, no_decay{{}, 0.0};
  for (size_t i = 0; i < params_.size(); ++i) (params_[i].decay ? decay : no_decay).index.push_back(i);
  for (auto& g : {decay, no_decay})
    if (!g.index.empty()) groups_.push_back(g);
}

void Optimizer::step_on_device(const torch::Tensor& lr) {
  torch::NoGradGuard no_grad;
#if VITLAB_HAS_FUSED_OPTIMIZERS
  if (fused_) {
    // The device counter is the truth here: a CUDA graph replays this without the host.
    step_count_.add_(1);
    for (const auto& g : groups_) {
      std::vector<torch::Tensor> p, grad, a, b, steps;
      for (size_t i : g.index) {
        if (!params_[i].param.grad().defined()) continue;
        p.push_back(params_[i].param);
        grad.push_back(params_[i].param.grad());
        if (config_.optimizer == OptimizerKind::kAdamW) {
          a.push_back(exp_avg_[i]);
          b.push_back(exp_avg_sq_[i]);
          steps.push_back(step_count_);
        } else {
          a.push_back(momentum_[i]);
        }
      }
      if (p.empty()) continue;
      if (config_.optimizer == OptimizerKind::kAdamW)
        compat::fused_adamw(p, grad, a, b, steps, lr, config_.beta1, config_.beta2, g.weight_decay,
                            config_.eps);
      else
        compat::fused_sgd(p, grad, config_.momentum > 0 ? a : std::vector<torch::Tensor>{},
                          g.weight_decay, config_.momentum, lr, config_.nesterov);
    }
    return;
  }
#endif
  step(lr.item<double>());  // no fused kernels: the host path (not capturable)
}

void Optimizer::zero_grad() {
  for (auto& p : params_)
    if (p.param.grad().defined()) p.param.mutable_grad() = torch::Tensor();
}

int64_t Optimizer::steps_taken() const {
  return fused_ ? static_cast<int64_t>(step_count_.item<float>()) : host_steps_;
}

void Optimizer::step(double lr) {
  torch::NoGradGuard no_grad;
  ++host_steps_;
  step_count_.add_(1);
  const double t = double(host_steps_);
  if (config_.optimizer == OptimizerKind::kAdamW) {
    // PyTorch's AdamW: decoupled decay, bias-corrected moments.
    const double b1 = config_.beta1, b2 = config_.beta2;
    const double bias1 = 1.0 - std::pow(b1, t), bias2 = 1.0 - std::pow(b2, t);
    const double step_size = lr / bias1;
    const double bias2_sqrt = std::sqrt(bias2);
    for (size_t i = 0; i < params_.size(); ++i) {
      auto& p = params_[i].param;
      const auto& g = p.grad();
      if (!g.defined()) continue;
      if (params_[i].decay && config_.weight_decay > 0) p.mul_(1.0 - lr * config_.weight_decay);
      exp_avg_[i].lerp_(g, 1.0 - b1);
      exp_avg_sq_[i].mul_(b2).addcmul_(g, g, 1.0 - b2);
      auto denom = (exp_avg_sq_[i].sqrt() / bias2_sqrt).add_(config_.eps);
      p.addcdiv_(exp_avg_[i], denom, -step_size);
    }
  } else {
    // PyTorch's SGD: L2 decay added to the gradient, momentum buffer, optional Nesterov.
    for (size_t i = 0; i < params_.size(); ++i) {
      auto& p = params_[i].param;
      auto g = p.grad();
      if (!g.defined()) continue;
      if (params_[i].decay && config_.weight_decay > 0) g = g.add(p, config_.weight_decay);
      auto& buf = momentum_[i];
      if (config_.momentum > 0) {
        buf.mul_(config_.momentum).add_(g);
        g = config_.nesterov ? g.add(buf, config_.momentum) : buf;
      }
      p.add_(g, -lr);
    }
  }
}

std::vector<std::pair<std::string, torch::Tensor>> Optimizer::state() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  out.emplace_back("step", torch::full({}, steps_taken(), torch::kLong));
  for (size_t i = 0; i < params_.size(); ++i) {
    if (config_.optimizer == OptimizerKind::kAdamW) {
      out.emplace_back(params_[i].name + ".exp_avg", exp_avg_[i]);
      out.emplace_back(params_[i].name + ".exp_avg_sq", exp_avg_sq_[i]);
    } else {
      out.emplace_back(params_[i].name + ".momentum", momentum_[i]);
    }
  }
  return out;
}

void Optimizer::load_state(const std::vector<std::pair<std::string, torch::Tensor>>& state) {
  auto mine = this->state();
  if (mine.size() != state.size())
    throw IoError(fmt::format("optimizer state has {} tensors, expected {} (different optimizer "
                              "or model?)",
                              state.size(), mine.size()));
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < state.size(); ++i) {
    if (state[i].first != mine[i].first || !state[i].second.sizes().equals(mine[i].second.sizes()))
      throw IoError(fmt::format("optimizer state \"{}\" {} does not match \"{}\" {}",
                                state[i].first, c10::str(state[i].second.sizes()), mine[i].first,
                                c10::str(mine[i].second.sizes())));
  }
  host_steps_ = state[0].second.item<int64_t>();
  step_count_.fill_(host_steps_);
  for (size_t i = 1; i < state.size(); ++i) mine[i].second.copy_(state[i].second);
}

}  // namespace vitlab
