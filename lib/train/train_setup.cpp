#include "train/train_setup.h"

namespace vitlab {

TrainingSetup set_up_training(ImageClassifier model, const TrainConfig& config, torch::Device device,
                              TrainObjective objective) {
  TrainingSetup setup;
  setup.model = std::move(model);
  setup.model->to(device);
  setup.optimizer =
      std::make_unique<Optimizer>(parameter_groups(*setup.model), config, config.fast_path);
  // CUDA fast path (train.fast_path): fused optimiser kernels and a CUDA-graph captured step.
  setup.step = std::make_unique<TrainStep>(setup.model, *setup.optimizer, config, std::move(objective), device,
                                           config.fast_path);
  return setup;
}

}  // namespace vitlab
