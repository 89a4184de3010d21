// An in-memory labelled image set: the common result of every reader.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

namespace vitlab {

struct Dataset {
  torch::Tensor images;  // (N, C, H, W) uint8, contiguous
  torch::Tensor labels;  // (N) int64, each in [0, num_classes)
  int num_classes = 0;
  std::vector<std::string> class_names;  // num_classes entries
  std::string name;                      // e.g. "fashion-mnist/train"

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  int64_t channels() const { return images.size(1); }
  int64_t height() const { return images.size(2); }
  int64_t width() const { return images.size(3); }
};

// A data set's official training and test parts.
struct DatasetSplits {
  Dataset train;
  Dataset test;
};

// The rows `indices` (int64, any order) of `data`, on the CPU; class names and count are kept.
inline Dataset select_rows(const Dataset& data, const torch::Tensor& indices,
                           const std::string& name) {
  Dataset out;
  out.images = data.images.index_select(0, indices).contiguous();
  out.labels = data.labels.index_select(0, indices).contiguous();
  out.num_classes = data.num_classes;
  out.class_names = data.class_names;
  out.name = name;
  return out;
}

// Class names "0", "1", ... for data sets that carry none.
inline std::vector<std::string> numbered_class_names(int num_classes) {
  std::vector<std::string> names;
  for (int i = 0; i < num_classes; ++i) names.push_back(std::to_string(i));
  return names;
}

}  // namespace vitlab
