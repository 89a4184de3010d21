#include "data/subset.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "core/error.h"
#include "data/random.h"

namespace vitlab {
namespace {

// Independent random streams for the three draws, so e.g. changing val_size does not change
// which test images are picked.
constexpr uint64_t kTrainStream = 1;
constexpr uint64_t kValStream = 2;
constexpr uint64_t kTestStream = 3;

torch::Tensor to_tensor(std::vector<int64_t>& indices) {
  std::sort(indices.begin(), indices.end());
  return torch::tensor(indices, torch::kInt64);
}

std::string class_label(const Dataset& data, int64_t k) {
  const bool named =
      k < static_cast<int64_t>(data.class_names.size()) && data.class_names[k] != std::to_string(k);
  return named ? fmt::format("{} (\"{}\")", k, data.class_names[k]) : std::to_string(k);
}

Dataset empty_like(const Dataset& data, const std::string& name) {
  return select_rows(data, torch::empty({0}, torch::kInt64), name);
}

// The drawn subset, or (train_part "rest") the images the draw left out.
Dataset train_part(const Dataset& train, const std::vector<int64_t>& quotas, const DataConfig& config,
                   uint64_t seed) {
  const IndexSplit split = stratified_split(train.labels, train.num_classes, quotas,
                                            mix_seed(seed, kTrainStream));
  const bool rest = config.train_part == TrainPart::kRest;
  return select_rows(train, rest ? split.rest : split.chosen, train.name + (rest ? "[rest]" : ""));
}

}  // namespace

std::vector<int64_t> class_counts(const torch::Tensor& labels, int num_classes) {
  const torch::Tensor cpu = labels.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t* p = cpu.data_ptr<int64_t>();
  std::vector<int64_t> counts(static_cast<size_t>(num_classes), 0);
  for (int64_t i = 0; i < cpu.numel(); ++i) {
    TORCH_CHECK(p[i] >= 0 && p[i] < num_classes, "label ", p[i], " out of range");
    ++counts[p[i]];
  }
  return counts;
}

std::vector<int64_t> proportional_quotas(const std::vector<int64_t>& counts, int64_t total) {
  const int64_t n = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  TORCH_CHECK(total >= 0 && total <= n, "proportional_quotas: ", total, " of ", n);
  std::vector<int64_t> quotas(counts.size(), 0);
  if (n == 0) return quotas;
  std::vector<std::pair<int64_t, size_t>> remainders;  // (remainder, class)
  int64_t assigned = 0;
  for (size_t k = 0; k < counts.size(); ++k) {
    // 128-bit product: total * count can exceed 2^63 only for absurd sizes, but costs nothing.
    const unsigned __int128 scaled = static_cast<unsigned __int128>(total) * counts[k];
    quotas[k] = static_cast<int64_t>(scaled / n);
    remainders.push_back({static_cast<int64_t>(scaled % n), k});
    assigned += quotas[k];
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (int64_t i = 0; i < total - assigned; ++i) ++quotas[remainders[i].second];
  return quotas;
}

IndexSplit stratified_split(const torch::Tensor& labels, int num_classes,
                            const std::vector<int64_t>& quotas, uint64_t seed) {
  const torch::Tensor cpu = labels.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t* p = cpu.data_ptr<int64_t>();
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(num_classes));
  for (int64_t i = 0; i < cpu.numel(); ++i) by_class[p[i]].push_back(i);  // ascending per class
  std::mt19937_64 rng(seed);
  std::vector<int64_t> chosen, rest;
  for (int k = 0; k < num_classes; ++k) {
    auto& members = by_class[k];
    TORCH_CHECK(quotas[k] <= static_cast<int64_t>(members.size()), "class ", k, " has only ",
                members.size(), " items, quota ", quotas[k]);
    fisher_yates(members, rng);
    chosen.insert(chosen.end(), members.begin(), members.begin() + quotas[k]);
    rest.insert(rest.end(), members.begin() + quotas[k], members.end());
  }
  return {to_tensor(chosen), to_tensor(rest)};
}

SubsetSplits make_subsets(const DatasetSplits& data, const DataConfig& config,
                          const std::string& source) {
  const uint64_t seed = static_cast<uint64_t>(config.subset_seed);
  const int k_count = data.train.num_classes;
  SubsetSplits out;

  // 1. Training subset: train_size in proportion to the classes, or per_class of each.
  const std::vector<int64_t> counts = class_counts(data.train.labels, k_count);
  Dataset train = data.train;
  if (config.per_class > 0) {
    for (int k = 0; k < k_count; ++k)
      if (counts[k] < config.per_class)
        config_error(
            source, "data.per_class",
            fmt::format("{}: class {} has only {} training images, fewer than {}", config.per_class,
                        class_label(data.train, k), counts[k], config.per_class));
    const std::vector<int64_t> quotas(static_cast<size_t>(k_count), config.per_class);
    train = train_part(data.train, quotas, config, seed);
  } else if (config.train_size > 0) {
    if (config.train_size > data.train.size())
      config_error(source, "data.train_size",
                   fmt::format("{} is more than the {} images of {}", config.train_size,
                               data.train.size(), data.train.name));
    const auto quotas = proportional_quotas(counts, config.train_size);
    train = train_part(data.train, quotas, config, seed);
  }

  // 2. Validation: a stratified hold-out of the (subset) training set; the rest trains.
  if (config.val_size > 0) {
    if (config.val_size >= train.size())
      config_error(
          source, "data.val_size",
          fmt::format("{} leaves no training images out of {}", config.val_size, train.size()));
    const auto quotas = proportional_quotas(class_counts(train.labels, k_count), config.val_size);
    const IndexSplit split =
        stratified_split(train.labels, k_count, quotas, mix_seed(seed, kValStream));
    out.val = select_rows(train, split.chosen, train.name + "[val]");
    out.train = select_rows(train, split.rest, train.name);
  } else {
    out.train = train;
    out.val = empty_like(train, train.name + "[val]");
  }

  // 3. Test subset.
  out.test = data.test;
  if (config.test_size > 0) {
    if (config.test_size > data.test.size())
      config_error(source, "data.test_size",
                   fmt::format("{} is more than the {} images of {}", config.test_size,
                               data.test.size(), data.test.name));
    const auto quotas =
        proportional_quotas(class_counts(data.test.labels, k_count), config.test_size);
    out.test = select_rows(
        data.test,
        stratified_split(data.test.labels, k_count, quotas, mix_seed(seed, kTestStream)).chosen,
        data.test.name);
  }
  return out;
}

}  // namespace vitlab
