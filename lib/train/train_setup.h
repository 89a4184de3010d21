// What a training run and `vitlab bench` build alike: the model on its device, its optimiser over
// parameter_groups() and the train step (with the CUDA fast path when train.fast_path asks).
#pragma once
#include <torch/torch.h>

#include <memory>

#include "config/train_config.h"
#include "models/classifier.h"
#include "train/optimizer.h"
#include "train/train_step.h"

namespace vitlab {

struct TrainingSetup {
  ImageClassifier model{nullptr};
  std::unique_ptr<Optimizer> optimizer;  // TrainStep holds a reference: the address is stable
  std::unique_ptr<TrainStep> step;
};

// Moves `model` (built and, if wanted, initialised on the host) to `device` and builds its
// optimiser and train step from `config`, the step minimising `objective`.
TrainingSetup set_up_training(ImageClassifier model, const TrainConfig& config, torch::Device device,
                              TrainObjective objective);

}  // namespace vitlab
