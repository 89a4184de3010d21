#include "models/parts.h"

#include <fmt/format.h>

#include <stdexcept>

namespace vitlab {

// Each part is defined in its own file, which returns its table row.
TokenMixerPart attention_mixer();  // mixers/attention.cpp
TokenMixerPart axial_mixer();      // mixers/axial.cpp
TokenMixerPart pooling_mixer();    // mixers/pooling.cpp
TokenMixerPart identity_mixer();   // mixers/identity.cpp
PositionEmbeddingPart no_position_embedding();  // pos_embeds/none.cpp
PositionEmbeddingPart learned_1d_embedding();   // pos_embeds/learned_1d.cpp
PositionEmbeddingPart learned_2d_embedding();   // pos_embeds/learned_2d.cpp
PositionEmbeddingPart relative_embedding();     // pos_embeds/relative.cpp
PositionEmbeddingPart sincos_2d_embedding();    // pos_embeds/sincos_2d.cpp
PoolingPart class_token_pooling();              // pooling_heads.cpp
PoolingPart average_pooling();                  // pooling_heads.cpp

const std::vector<TokenMixerPart>& token_mixer_parts() {
  static const std::vector<TokenMixerPart> parts = {
      attention_mixer(),
      axial_mixer(),
      pooling_mixer(),
      identity_mixer(),
  };
  return parts;
}

const std::vector<PositionEmbeddingPart>& position_embedding_parts() {
  static const std::vector<PositionEmbeddingPart> parts = {
      no_position_embedding(), learned_1d_embedding(), learned_2d_embedding(),
      relative_embedding(),    sincos_2d_embedding(),
  };
  return parts;
}

const std::vector<PoolingPart>& pooling_parts() {
  static const std::vector<PoolingPart> parts = {class_token_pooling(), average_pooling()};
  return parts;
}

namespace {

template <typename Part>
const Part* find_part(const std::vector<Part>& parts, const std::string& name) {
  for (const auto& p : parts)
    if (name == p.name) return &p;
  return nullptr;
}

template <typename Part>
const Part& get_part(const std::vector<Part>& parts, const std::string& name, const char* kind) {
  if (const auto* p = find_part(parts, name)) return *p;
  throw std::out_of_range(fmt::format("no {} named \"{}\"", kind, name));
}

template <typename Part>
std::string choices(const std::vector<Part>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : " | ") + std::string(p.name);
  return out;
}

// The part named by `key`, or a ConfigError listing the registered names.
template <typename Part>
const Part& checked_part(const std::vector<Part>& parts, const std::string& name,
                         const std::string& key, const PartError& bad) {
  if (const auto* p = find_part(parts, name)) return *p;
  bad(key, fmt::format("unknown value \"{}\"; allowed: {}", name, choices(parts)));
  throw std::logic_error("PartError returned");
}

}  // namespace

const TokenMixerPart& token_mixer_part(const std::string& name) {
  return get_part(token_mixer_parts(), name, "token mixer");
}
const PositionEmbeddingPart& position_embedding_part(const std::string& name) {
  return get_part(position_embedding_parts(), name, "position embedding");
}
const PoolingPart& pooling_part(const std::string& name) {
  return get_part(pooling_parts(), name, "pooling head");
}

void check_model_parts(const ModelConfig& c, const std::string& source, const std::string& path) {
  const PartError bad = [&](const std::string& key, const std::string& message) {
    config_error(source, join_path(path, key), message);
  };
  const auto& pos = checked_part(position_embedding_parts(), c.pos_embed, "pos_embed", bad);
  const auto& pooling = checked_part(pooling_parts(), c.pool, "pool", bad);
  const auto& mixer = checked_part(token_mixer_parts(), c.token_mixer, "token_mixer", bad);
  if (c.family == ModelFamily::kResNet) return;  // no transformer: the parts are not built
  if (pooling.needs_class_token && !c.class_token)
    bad("pool", fmt::format("\"{}\" needs a class token; set class_token to true or pool to "
                            "\"gap\"",
                            pooling.name));
  if (!mixer.mixes_class_token && c.class_token)
    bad("class_token", fmt::format("token_mixer \"{}\" has no place for a class token (it never "
                                   "mixes one with the patches); set class_token false and pool "
                                   "\"gap\"",
                                   mixer.name));
  if (pos.block_bias && !mixer.takes_attention_bias)
    bad("pos_embed", fmt::format("\"{}\" biases attention logits; token_mixer \"{}\" has none. "
                                 "Use attention or another pos_embed",
                                 pos.name, mixer.name));
  if (pos.check) pos.check(c, bad);
  if (mixer.check) mixer.check(c, bad);
}

void install_model_part_checks() {
  set_model_part_check(&check_model_parts);
}

}  // namespace vitlab
