// The registered parts of a transformer: one table each for token mixers, position embeddings
// and pooling heads. The config names a part by its table name; the ViT builds whatever the
// tables give it, and the tests iterate the tables, so a part added here is built, validated and
// tested on every path (CPU, the plain GPU path, the fused and graph-captured GPU path) with no
// other edit. How to add one: README, "Adding a variant".
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "config/model_config.h"
#include "models/pos_embed.h"
#include "models/token_mixer.h"

namespace vitlab {

// Reports a bad config field: (key under `model`, message). Throws.
using PartError = std::function<void(const std::string& key, const std::string& message)>;

struct TokenMixerPart {
  const char* name;         // model.token_mixer
  const char* module_name;  // the block's child module (timm's "attn" for attention)
  const char* description;
  // The mixer's first operation is a linear layer, so under autocast its input is cast anyway and
  // the norm before it may write autocast's dtype.
  bool projects_input;
  // It mixes a class token with the patches; if not (mixers over the 2-D grid, or none), a
  // class token would learn nothing from the image.
  bool mixes_class_token;
  // It computes attention logits, so a position embedding's per-block bias applies.
  bool takes_attention_bias;
  TokenMixerModule (*build)(const ModelConfig& c, AttentionBiasModule bias);
  // Forward FLOPs of one block's mixer for one image of `tokens` tokens (2 per multiply-add).
  double (*flops)(const ModelConfig& c, double tokens);
  void (*check)(const ModelConfig& c, const PartError& bad);  // extra rules, or null
};

struct PositionEmbeddingPart {
  const char* name;  // model.pos_embed
  const char* description;
  PositionEmbeddingModule (*build)(const ModelConfig& c);  // registered as the ViT's "pos"
  AttentionBiasModule (*block_bias)(const ModelConfig& c);  // per block, or null
  void (*check)(const ModelConfig& c, const PartError& bad);  // or null
};

struct PoolingPart {
  const char* name;  // model.pool
  const char* description;
  bool needs_class_token;
  // gap_norm "after_pool" (timm's fc_norm) applies: the final norm may follow the pooling.
  bool norm_after_pool;
  // (B, prefix + N, D) tokens -> (B, D).
  torch::Tensor (*pool)(const torch::Tensor& tokens, int64_t prefix_tokens);
};

const std::vector<TokenMixerPart>& token_mixer_parts();
const std::vector<PositionEmbeddingPart>& position_embedding_parts();
const std::vector<PoolingPart>& pooling_parts();

// The part of that name; std::out_of_range for an unknown one (configs are validated first).
const TokenMixerPart& token_mixer_part(const std::string& name);
const PositionEmbeddingPart& position_embedding_part(const std::string& name);
const PoolingPart& pooling_part(const std::string& name);

// Checks the part names and every rule the parts state; ConfigError naming `source` and
// `path.key`. Installed into ModelConfig::validate by install_model_part_checks().
void check_model_parts(const ModelConfig& c, const std::string& source, const std::string& path);

// Makes every ModelConfig::validate() call check_model_parts. Called once by each program's main
// (the config layer cannot see the models layer).
void install_model_part_checks();

}  // namespace vitlab
