#include "train/weights_init.h"

namespace vitlab {

WeightsImportReport init_weights_from(ImageClassifierImpl& model, const std::string& path) {
  return load_weights(model, path, WeightsImportOptions{});
}

}  // namespace vitlab
