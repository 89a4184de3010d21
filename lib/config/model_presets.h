// The named model presets: the rows of the factory table (`vitlab models`).
#pragma once
#include <string>
#include <vector>

#include "config/model_config.h"

namespace vitlab {

struct ModelPreset {
  std::string name;
  std::string description;
  ModelConfig config;  // every field filled; config.name == name
};

// All presets, in listing order.
const std::vector<ModelPreset>& model_presets();

// The preset of that name; ConfigError listing the known names otherwise.
const ModelPreset& find_model_preset(const std::string& name, const std::string& source = "",
                                     const std::string& path = "model.name");

}  // namespace vitlab
