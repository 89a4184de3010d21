#include "models/factory.h"

#include "models/init.h"
#include "models/resnetv2.h"
#include "models/vit.h"

namespace vitlab {

const std::vector<ModelBuilder>& model_builders() {
  static const std::vector<ModelBuilder> builders = {
      {ModelFamily::kViT, "Vision Transformer on image patches",
       [](const ModelConfig& c) -> ImageClassifier { return std::make_shared<ViTImpl>(c); }},
      {ModelFamily::kHybrid, "ResNet stem, its feature map as tokens, then a Vision Transformer",
       [](const ModelConfig& c) -> ImageClassifier { return std::make_shared<ViTImpl>(c); }},
      {ModelFamily::kResNet, "BiT ResNetV2 baseline",
       [](const ModelConfig& c) -> ImageClassifier { return std::make_shared<ResNetV2Impl>(c); }},
  };
  return builders;
}

ImageClassifier build_model(const ModelConfig& config) {
  config.validate();
  for (const auto& b : model_builders())
    if (b.family == config.family) return b.build(config);
  throw ConfigError(fmt::format("model.family: no builder for \"{}\"",
                                enum_name(config.family, model_family_names())));
}

int64_t count_parameters(const ModelConfig& config) {
  const ShapeOnlyScope shapes_only;
  return count_parameters(*build_model(config));
}

}  // namespace vitlab
