// Analytic floating-point operation counts (a multiply-add = 2 FLOPs) of one image's forward
// pass, from the model config alone. Training is counted as 3x forward (backward = 2x).
#pragma once
#include <cstdint>

#include "config/model_config.h"

namespace vitlab {

double forward_flops_per_image(const ModelConfig& config);
inline double train_flops_per_image(const ModelConfig& config) { return 3.0 * forward_flops_per_image(config); }

}  // namespace vitlab
