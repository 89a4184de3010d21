#include "models/vit.h"

#include <optional>

#include "core/compat.h"
#include "models/fused_norm.h"
#include "models/weight_cast.h"

namespace vitlab {
namespace {
torch::nn::LayerNorm layer_norm(int64_t width, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(eps));
}

void init_linear(torch::nn::LinearImpl& linear) {
  // timm's default ViT init: truncated normal (std 0.02) weights, zero biases.
  trunc_normal_(linear.weight, 0.02);
  if (linear.bias.defined()) {
    torch::NoGradGuard no_grad;
    linear.bias.zero_();
  }
}
}  // namespace

BlockImpl::BlockImpl(const ModelConfig& c, double drop_path_rate)
    : mixer(c.token_mixer), drop_path_rate(drop_path_rate) {
  norm1 = register_module("norm1", layer_norm(c.width, c.layer_norm_eps));
  switch (c.token_mixer) {
    case TokenMixer::kAttention:
      attn = register_module("attn",
                             Attention(c.width, c.heads, c.qkv_bias, c.attn_dropout, c.dropout));
      if (c.pos_embed == PosEmbed::kRelative)
        relative = register_module(
            "relative", RelativePositionBias(c.heads, c.num_patches() + (c.class_token ? 1 : 0)));
      break;
    case TokenMixer::kAxial:
      axial = register_module("axial", AxialAttention(c.width, c.heads, c.grid_size(), c.qkv_bias,
                                                      c.attn_dropout, c.dropout));
      break;
    case TokenMixer::kPooling:
      pooling = register_module("pooling", PoolingMixer(c.grid_size(), c.pool_mixer_size));
      break;
  }
  norm2 = register_module("norm2", layer_norm(c.width, c.layer_norm_eps));
  mlp = register_module("mlp", Mlp(c.width, c.mlp_dim, c.dropout));
}

torch::Tensor BlockImpl::mix(const torch::Tensor& normed, torch::Tensor* weights) {
  switch (mixer) {
    case TokenMixer::kAttention:
      return attn->forward(normed, relative ? relative->forward() : torch::Tensor(), weights);
    case TokenMixer::kAxial:
      return axial->forward(normed);
    case TokenMixer::kPooling:
      return pooling->forward(normed);
  }
  throw std::logic_error("unknown token mixer");
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, torch::Tensor* weights) {
  auto h = mix(norm1->forward(x), weights);
  // Both residual branches are assigned back to the stream (a published port dropped the MLP's).
  auto y = x + drop_path(h, drop_path_rate, is_training());
  y = y + drop_path(mlp->forward(norm2->forward(y)), drop_path_rate, is_training());
  return y;
}

std::pair<torch::Tensor, torch::Tensor> BlockImpl::forward_fused(const torch::Tensor& x,
                                                                 const torch::Tensor& pending,
                                                                 torch::Tensor* weights) {
  // Attention projects its input first, so LN1 may be written in autocast's dtype; the pooling
  // mixer subtracts its input from a pooled copy and keeps float32, as the plain path.
  const bool mixer_projects = mixer != TokenMixer::kPooling;
  torch::Tensor stream, normed;
  if (pending.defined()) {
    std::tie(stream, normed) = fused_add_layer_norm(x, pending, norm1, mixer_projects);
  } else {
    stream = x;
    normed = fused_layer_norm(x, norm1, mixer_projects);
  }
  auto h = drop_path(mix(normed, weights), drop_path_rate, is_training());
  // The first norm saved `stream` for its backward; the second keeps it and the branch h
  // (bf16) instead of their float32 sum.
  auto [y, normed2] =
      fused_add_layer_norm(stream, h, norm2, /*feeds_matmul=*/true, /*keep_inputs=*/true);
  return {y, drop_path(mlp->forward(normed2), drop_path_rate, is_training())};
}

void BlockImpl::use_fast_linears(bool on) {
  mlp->fast_linears = on;
  if (attn) attn->fast_linears = on;
  if (axial) axial->row->fast_linears = axial->column->fast_linears = on;
}

PatchEmbedImpl::PatchEmbedImpl(const ModelConfig& c) {
  int64_t in = c.in_channels;
  if (c.family == ModelFamily::kHybrid) {
    backbone = register_module("backbone", ResNetBackbone(c));
    in = backbone->out_channels();
  }
  proj = register_module(
      "proj",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(in, c.width, c.patch_size).stride(c.patch_size)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& images) {
  auto x = backbone ? backbone->forward(images) : images;
  x = proj->forward(x);                 // (B, D, gh, gw)
  return x.flatten(2).transpose(1, 2);  // (B, N, D), row-major over the grid
}

torch::Tensor PatchEmbedImpl::forward_as_matmul(const torch::Tensor& images) {
  const int64_t p = proj->options.kernel_size()->at(0), D = proj->options.out_channels();
  const int64_t B = images.size(0), C = images.size(1);
  const int64_t gh = images.size(2) / p, gw = images.size(3) / p;  // the conv drops the remainder
  auto x = images;
  // Cast before the layout copy, as the convolution would under autocast.
  if (const auto dtype = compat::cuda_autocast_dtype(); dtype && images.is_cuda()) x = x.to(*dtype);
  x = x.narrow(2, 0, gh * p)
          .narrow(3, 0, gw * p)
          .reshape({B, C, gh, p, gw, p})
          .permute({0, 2, 4, 1, 3, 5})        // (B, gh, gw, C, p, p)
          .reshape({B, gh * gw, C * p * p});  // (B, N, C p p), row-major over the grid
  return torch::linear(x, proj->weight.reshape({D, C * p * p}), proj->bias);  // (B, N, D)
}

ViTImpl::ViTImpl(const ModelConfig& c) : ImageClassifierImpl(c) {
  patch_embed = register_module("patch_embed", PatchEmbed(c));
  if (c.class_token) {
    cls_token = register_parameter("cls_token", torch::empty({1, 1, c.width}));
    torch::NoGradGuard no_grad;
    cls_token.normal_(0.0, 1e-6);
  }
  pos = register_module(
      "pos", PositionEmbedding(c.pos_embed, c.grid_size(), c.width, num_prefix_tokens()));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < c.depth; ++i) {
    const double rate = c.depth > 1 ? c.drop_path * i / (c.depth - 1) : c.drop_path;
    block_list.push_back(Block(c, rate));
    blocks->push_back(block_list.back());
  }
  if (c.pool == Pooling::kGap && c.gap_norm == GapNorm::kAfterPool)
    fc_norm = register_module("fc_norm", layer_norm(c.width, c.layer_norm_eps));
  else
    norm = register_module("norm", layer_norm(c.width, c.layer_norm_eps));
  int64_t head_in = c.width;
  if (c.representation_size > 0) {
    pre_logits = register_module("pre_logits", torch::nn::Linear(c.width, c.representation_size));
    init_linear(*pre_logits);
    head_in = c.representation_size;
  }
  head = register_module("head", torch::nn::Linear(head_in, c.num_classes));
  for (auto& module : blocks->modules(/*include_self=*/false))
    if (auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(module))
      init_linear(*linear);
  if (c.head_zero_init) {
    torch::NoGradGuard no_grad;
    head->weight.zero_();
    head->bias.zero_();
  } else {
    init_linear(*head);
  }
}

void ViTImpl::use_fused_kernels(bool on) {
  fused_kernels_ = on;
  for (auto& block : block_list) block->use_fast_linears(on);
  if (patch_embed->backbone) patch_embed->backbone->use_fused_kernels(on);
}

std::vector<torch::Tensor> ViTImpl::block_linear_parameters() {
  std::vector<torch::Tensor> params;
  for (auto& module : blocks->modules(/*include_self=*/false))
    if (auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(module)) {
      params.push_back(linear->weight);
      if (linear->bias.defined()) params.push_back(linear->bias);
    }
  return params;
}

torch::Tensor ViTImpl::embed(const torch::Tensor& images) {
  if (fused_kernels_ && !patch_embed->backbone) return patch_embed->forward_as_matmul(images);
  return patch_embed->forward(images);
}

torch::Tensor ViTImpl::add_tokens_and_positions(const torch::Tensor& patches) {
  auto x = patches;
  if (cls_token.defined()) {
    auto cls = cls_token.expand({x.size(0), 1, x.size(2)});  // cat promotes to fp32, as timm
    x = torch::cat({cls, x}, 1);                             // (B, 1 + N, D)
  }
  x = pos->forward(x);
  return torch::dropout(x, config_.dropout, is_training());
}

torch::Tensor ViTImpl::encode(const torch::Tensor& tokens, std::vector<torch::Tensor>* attention) {
  if (fused_kernels_) {
    // The blocks' linear weights in bf16 for this forward, cast in one kernel (fast_linear.h
    // takes them from the scope).
    std::optional<Bf16CastScope> casts;
    if (tokens.is_cuda() && compat::cuda_autocast_dtype() == torch::kBFloat16)
      casts.emplace(block_linear_parameters());
    torch::Tensor x = tokens, pending;  // the stream is x + pending
    for (auto& block : block_list) {
      torch::Tensor w;
      std::tie(x, pending) = block->forward_fused(x, pending, attention ? &w : nullptr);
      if (attention) attention->push_back(w);
    }
    return pending.defined() ? x + pending : x;
  }
  auto x = tokens;
  for (auto& block : block_list) {
    if (attention) {
      torch::Tensor w;
      x = block->forward(x, &w);
      attention->push_back(w);
    } else {
      x = block->forward(x);
    }
  }
  return x;
}

torch::Tensor ViTImpl::pool(const torch::Tensor& encoded) {
  if (config_.pool == Pooling::kCls) return norm->forward(encoded).select(1, 0);  // y = LN(z_L^0)
  auto patches = encoded.narrow(1, num_prefix_tokens(), encoded.size(1) - num_prefix_tokens());
  if (config_.gap_norm == GapNorm::kAfterPool) return fc_norm->forward(patches.mean(1));
  return norm->forward(patches).mean(1);
}

torch::Tensor ViTImpl::head_logits(const torch::Tensor& pooled) {
  auto x = pre_logits ? torch::tanh(linear(pre_logits, pooled)) : pooled;
  return linear(head, torch::dropout(x, config_.dropout, is_training()));
}

torch::Tensor ViTImpl::forward(const torch::Tensor& images) {
  return head_logits(pool(encode(add_tokens_and_positions(embed(images)))));
}

torch::Tensor ViTImpl::forward_with_attention(const torch::Tensor& images,
                                              std::vector<torch::Tensor>& attention) {
  attention.clear();
  return head_logits(pool(encode(add_tokens_and_positions(embed(images)), &attention)));
}

}  // namespace vitlab
