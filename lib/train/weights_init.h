// Starting a run from existing weights (`init_from`): a vitlab checkpoint, timm-named (or
// vitlab-exported) safetensors, or a JAX .npz checkpoint (vit_jax / big_vision names).
#pragma once
#include <string>

#include "io/weights_import.h"
#include "models/classifier.h"

namespace vitlab {

// Loads the weights stored at `path` into `model` through the same path as `vitlab import`
// (io/weights_import.h): names mapped, position embedding resized when the grid differs
// (bicubic, or bilinear for .npz), the head re-initialised when only the class count differs.
// IoError naming the file and tensor for anything else that does not fit.
WeightsImportReport init_weights_from(ImageClassifierImpl& model, const std::string& path);

}  // namespace vitlab
