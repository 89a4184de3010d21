// The model factory: one explicit table from model family to builder. The named presets (the
// rows `vitlab models` lists) are in config/model_presets.h; a preset plus overrides gives a
// ModelConfig, and build_model() turns any valid ModelConfig into a module.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "config/model_config.h"
#include "models/classifier.h"

namespace vitlab {

struct ModelBuilder {
  ModelFamily family;
  const char* description;
  std::function<ImageClassifier(const ModelConfig&)> build;
};

const std::vector<ModelBuilder>& model_builders();

// Validates the config, then builds the model (on CPU, fp32, randomly initialised from the
// current torch seed).
ImageClassifier build_model(const ModelConfig& config);

// The parameter count of build_model(config), from shapes alone: the model is built under
// ShapeOnlyScope (models/init.h), so nothing is allocated or initialised.
int64_t count_parameters(const ModelConfig& config);

}  // namespace vitlab
