#include "models/vit.h"

#include "ops/attention.h"
#include "ops/patch_projection.h"

namespace vitlab {
namespace {
void init_linear(LinearImpl& linear) {
  // timm's default ViT init: truncated normal (std 0.02) weights, zero biases.
  trunc_normal_(linear.weight, 0.02);
  constant_(linear.bias, 0.0);
}
}  // namespace

BlockImpl::BlockImpl(const ModelConfig& c, double drop_path_rate)
    : drop_path_rate(drop_path_rate) {
  const auto& mixer_part = token_mixer_part(c.token_mixer);
  const auto& pos_part = position_embedding_part(c.pos_embed);
  mixer_projects_input = mixer_part.projects_input;
  norm1 = register_module("norm1", LayerNorm(c.width, c.layer_norm_eps));
  auto bias = pos_part.block_bias ? pos_part.block_bias(c) : nullptr;
  mixer = register_module(mixer_part.module_name, mixer_part.build(c, bias));
  if (bias) relative = register_module("relative", bias);
  norm2 = register_module("norm2", LayerNorm(c.width, c.layer_norm_eps));
  mlp = register_module("mlp", Mlp(c.width, c.mlp_dim, c.dropout));
}

Residual BlockImpl::forward(const Residual& z) {
  // (2) z'_l = MSA(LN(z_{l-1})) + z_{l-1}
  auto [z_prev, h] = norm1->forward(z, {/*feeds_matmul=*/mixer_projects_input});  // z_{l-1}, LN
  auto a = drop_path(mixer->forward(h), drop_path_rate, is_training());           // MSA(LN(.))
  // (3) z_l = MLP(LN(z'_l)) + z'_l. The first norm saved z_{l-1} for its backward, so the second
  // keeps z_{l-1} and a rather than their sum z'_l (ops::NormUse::stream_saved).
  auto [z_mid, h2] = norm2->forward(Residual{z_prev, a},
                                    {/*feeds_matmul=*/true, /*stream_saved=*/true});  // z'_l, LN
  return {z_mid, drop_path(mlp->forward(h2), drop_path_rate, is_training())};  // z'_l + MLP(.)
}

PatchEmbedImpl::PatchEmbedImpl(const ModelConfig& c) {
  int64_t in = c.in_channels;
  if (c.family == ModelFamily::kHybrid) {
    backbone = register_module("backbone", ResNetBackbone(c));
    in = backbone->out_channels();
  }
  proj = register_module("proj", PatchProjection(in, c.width, c.patch_size));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& images) {
  auto x = backbone ? backbone->forward(images) : images;  // (B, C, H, W)
  return proj->forward(x);                                 // (B, N, D), row-major over the grid
}

PatchProjectionImpl::PatchProjectionImpl(int64_t in, int64_t width, int64_t patch) {
  weight = register_parameter("weight", new_parameter({width, in, patch, patch}));
  bias = register_parameter("bias", new_parameter({width}));
  default_init_(weight, bias);  // PyTorch's Conv2d default, as timm leaves it
}

torch::Tensor PatchProjectionImpl::forward(const torch::Tensor& x) {
  return ops::patch_projection(x, weight, bias);
}

ViTImpl::ViTImpl(const ModelConfig& c)
    : ImageClassifierImpl(c), pooling_(pooling_part(c.pool)) {
  patch_embed = register_module("patch_embed", PatchEmbed(c));
  if (c.class_token) {
    cls_token = register_parameter("cls_token", new_parameter({1, 1, c.width}));
    normal_(cls_token, 0.0, 1e-6);
  }
  pos = register_module("pos", position_embedding_part(c.pos_embed).build(c));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < c.depth; ++i) {
    const double rate = c.depth > 1 ? c.drop_path * i / (c.depth - 1) : c.drop_path;
    block_list.push_back(Block(c, rate));
    blocks->push_back(block_list.back());
  }
  if (pooling_.norm_after_pool && c.gap_norm == GapNorm::kAfterPool)
    fc_norm = register_module("fc_norm", LayerNorm(c.width, c.layer_norm_eps));
  else
    norm = register_module("norm", LayerNorm(c.width, c.layer_norm_eps));
  int64_t head_in = c.width;
  if (c.representation_size > 0) {
    pre_logits = register_module("pre_logits", Linear(c.width, c.representation_size));
    init_linear(*pre_logits);
    head_in = c.representation_size;
  }
  head = register_module("head", Linear(head_in, c.num_classes));
  for (auto& module : blocks->modules(/*include_self=*/false))
    if (auto linear = std::dynamic_pointer_cast<LinearImpl>(module)) init_linear(*linear);
  if (c.head_zero_init) {
    constant_(head->weight, 0.0);
    constant_(head->bias, 0.0);
  } else {
    init_linear(*head);
  }
}

torch::Tensor ViTImpl::embed(const torch::Tensor& images) {
  return patch_embed->forward(images);
}

torch::Tensor ViTImpl::add_tokens_and_positions(const torch::Tensor& patches) {
  auto x = patches;  // (B, N, D)
  if (cls_token.defined()) {
    auto cls = cls_token.expand({x.size(0), 1, x.size(2)});  // cat promotes to fp32, as timm
    x = torch::cat({cls, x}, 1);                             // (B, 1 + N, D)
  }
  x = pos->forward(x);
  return torch::dropout(x, config_.dropout, is_training());
}

Residual ViTImpl::encode(const torch::Tensor& tokens) {
  Residual z{tokens, {}};
  for (auto& block : block_list) z = block->forward(z);
  return z;
}

torch::Tensor ViTImpl::pool(const Residual& z) {
  // (4) y = LN(z_L^0) for the class token; for GAP the norm comes before (big_vision) or after
  // (timm's fc_norm) the average.
  if (fc_norm) return fc_norm->forward(pooling_.pool(z.sum(), num_prefix_tokens()));
  auto normed = norm->forward(z).second;  // (B, T, D)
  return pooling_.pool(normed, num_prefix_tokens());  // (B, D)
}

torch::Tensor ViTImpl::features(const torch::Tensor& images) {
  auto y = pool(encode(add_tokens_and_positions(embed(images))));  // (B, D)
  return pre_logits ? torch::tanh(pre_logits->forward(y)) : y;
}

torch::Tensor ViTImpl::forward(const torch::Tensor& images) {
  return head->forward(torch::dropout(features(images), config_.dropout, is_training()));
}

void ViTImpl::add_masked_patch_head(const MaskedPatchConfig& config) {
  masked_patch = register_module("masked_patch", MaskedPatchHead(config_, config));
}

MaskedPatchPrediction ViTImpl::forward_masked_patches(const torch::Tensor& images) {
  TORCH_CHECK(masked_patch, "forward_masked_patches: the model has no masked-patch head");
  // Corrupted after the patch projection, before the class token and position embedding (B.1.2).
  auto [patches, corrupted] = masked_patch->corrupt(embed(images));   // (B, N, D), (B, N)
  auto z = encode(add_tokens_and_positions(patches)).sum();            // (B, T, D)
  auto tokens = z.slice(1, num_prefix_tokens());                       // (B, N, D)
  return {masked_patch->forward(tokens), corrupted};
}

torch::Tensor ViTImpl::forward_with_attention(const torch::Tensor& images,
                                              std::vector<torch::Tensor>& attention) {
  ops::AttentionRecorder recorder;
  auto logits = forward(images);
  attention = std::move(recorder.weights());
  return logits;
}

}  // namespace vitlab
