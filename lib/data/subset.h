// Stratified, seeded subsets and splits. Every draw uses std::mt19937_64 with our own
// Fisher-Yates (data/random.h), so the same seed picks the same images on every machine and
// LibTorch version. Index tensors are int64 on the CPU, sorted ascending.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "config/data_config.h"
#include "data/dataset.h"

namespace vitlab {

// How many labels of each class: (N) int64 labels in [0, num_classes) -> num_classes counts.
std::vector<int64_t> class_counts(const torch::Tensor& labels, int num_classes);

// Splits `total` over the classes in proportion to `counts` (largest remainder, ties to the lower
// class index); each quota is at most its class's count. Requires total <= sum(counts).
std::vector<int64_t> proportional_quotas(const std::vector<int64_t>& counts, int64_t total);

struct IndexSplit {
  torch::Tensor chosen;  // (quota sum) int64, sorted
  torch::Tensor rest;    // (N - quota sum) int64, sorted
};

// Picks quotas[k] random indices of each class k (shuffle each class with a generator seeded by
// `seed`, take the first quotas[k]). Requires quotas[k] <= count of class k.
IndexSplit stratified_split(const torch::Tensor& labels, int num_classes,
                            const std::vector<int64_t>& quotas, uint64_t seed);

// The three parts a run uses, after subsetting and the validation split.
struct SubsetSplits {
  Dataset train;
  Dataset val;  // zero rows when val_size is 0
  Dataset test;
};

// Applies data.train_size / data.per_class (stratified subset of train), data.val_size
// (stratified hold-out from that subset) and data.test_size (stratified subset of test), all
// seeded by data.subset_seed. A size larger than what the data has, or a class with fewer than
// per_class images, is a ConfigError naming the key (prefixed with `source` when given).
SubsetSplits make_subsets(const DatasetSplits& data, const DataConfig& config,
                          const std::string& source = "");

}  // namespace vitlab
