#include "data/load_data.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/error.h"
#include "data/cifar_reader.h"
#include "data/idx_reader.h"
#include "data/image_folder.h"
#include "data/resize.h"
#include "data/subset.h"
#include "data/synthetic.h"

namespace vitlab {
namespace {

Dataset resized(const Dataset& data, int size) {
  Dataset out = data;
  out.images = resize_images(data.images, size, size);
  return out;
}

// data.mean / data.std when given (as many values as channels), else `fallback()`.
void set_mean_std(
    DataBundle& b, const DataConfig& config, const std::string& source,
    const std::function<std::pair<std::vector<double>, std::vector<double>>()>& fallback) {
  if (config.mean.empty()) {
    std::tie(b.mean, b.std) = fallback();
    return;
  }
  if (static_cast<int>(config.mean.size()) != b.channels)
    config_error(source, "data.mean",
                 fmt::format("has {} value{} but the images of {} have {} channel{}",
                             config.mean.size(), config.mean.size() == 1 ? "" : "s", b.train.name,
                             b.channels, b.channels == 1 ? "" : "s"));
  if (config.std.size() != config.mean.size())
    config_error(
        source, "data.std",
        fmt::format("has {} values but data.mean has {}", config.std.size(), config.mean.size()));
  b.mean = config.mean;
  b.std = config.std;
}

Dataset empty_split(const FileListing& files, int64_t side, const std::string& name) {
  Dataset d;
  d.images = torch::empty({0, 3, side, side}, torch::kUInt8);  // (0, 3, S, S)
  d.labels = torch::empty({0}, torch::kInt64);
  d.num_classes = static_cast<int>(files.class_names.size());
  d.class_names = files.class_names;
  d.name = name;
  return d;
}

// A streamed folder: the listings, no images; 3 channels at data.image_size.
DataBundle load_streamed(const DataConfig& config, const std::string& source,
                         StreamedFolder folder) {
  DataBundle b;
  auto shared = std::make_shared<const StreamedFolder>(std::move(folder));
  b.image_size = config.image_size;
  b.channels = 3;
  b.num_classes = static_cast<int>(shared->train.class_names.size());
  b.class_names = shared->train.class_names;
  b.train = empty_split(shared->train, config.image_size, "image-folder/train (streamed)");
  b.val = empty_split(shared->train, config.image_size, "image-folder/val");
  b.test = empty_split(shared->test, config.image_size,
                       "image-folder/" + shared->test.split + " (streamed)");
  b.streamed = shared;
  // timm's IMAGENET_DEFAULT_MEAN / _STD: a pass over a large folder to measure them would cost
  // as much as an epoch.
  set_mean_std(b, config, source, [] {
    return std::pair<std::vector<double>, std::vector<double>>{{0.485, 0.456, 0.406},
                                                               {0.229, 0.224, 0.225}};
  });
  return b;
}

}  // namespace

DatasetSplits read_dataset(const DataConfig& config) {
  switch (config.dataset) {
    case DatasetKind::kFashionMnist:
      return read_fashion_mnist(config.path);
    case DatasetKind::kMnistFormat:
      return read_mnist_format(config.path, /*fashion=*/false);
    case DatasetKind::kCifar10:
      return read_cifar10(config.path);
    case DatasetKind::kCifar100:
      return read_cifar100(config.path);
    case DatasetKind::kImageFolder:
      // Decoded straight to data.image_size: one resize per image instead of two.
      return read_image_folder(config.path, config.image_size);
    case DatasetKind::kSynthetic: {
      SyntheticSpec spec;
      spec.num_classes = config.synthetic_classes;
      spec.train_size = config.synthetic_train;
      spec.test_size = config.synthetic_test;
      spec.image_size = config.synthetic_image_size;
      spec.channels = config.synthetic_channels;
      spec.seed = static_cast<uint64_t>(config.subset_seed);
      return make_synthetic(spec);
    }
  }
  fail<ConfigError>("data.dataset: unknown kind");
}

std::pair<std::vector<double>, std::vector<double>> standard_mean_std(DatasetKind kind) {
  switch (kind) {
    case DatasetKind::kFashionMnist:
      return {{0.2860}, {0.3530}};
    case DatasetKind::kCifar10:
      return {{0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616}};
    case DatasetKind::kCifar100:
      return {{0.5071, 0.4865, 0.4409}, {0.2673, 0.2564, 0.2762}};
    default:
      // mnist-format may hold any data in MNIST's layout; for MNIST itself the computed values
      // over the full training set are the usual 0.1307 / 0.3081.
      return {{}, {}};
  }
}

std::pair<std::vector<double>, std::vector<double>> compute_mean_std(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4, "compute_mean_std expects (N, C, H, W)");
  const int64_t n = images.size(0);
  const int64_t channels = images.size(1);
  torch::Tensor sum = torch::zeros({channels}, torch::kDouble);
  torch::Tensor sum_sq = torch::zeros({channels}, torch::kDouble);
  const int64_t per_image = std::max<int64_t>(1, images.numel() / std::max<int64_t>(1, n));
  const int64_t chunk = std::max<int64_t>(1, (int64_t{8} << 20) / per_image);  // 64 MiB doubles
  for (int64_t start = 0; start < n; start += chunk) {
    const torch::Tensor part =
        images.narrow(0, start, std::min(chunk, n - start)).to(torch::kCPU, torch::kDouble) / 255.0;
    sum += part.sum({0, 2, 3});
    sum_sq += (part * part).sum({0, 2, 3});
  }
  const double count = static_cast<double>(n * images.size(2) * images.size(3));
  std::vector<double> mean(channels), std(channels);
  for (int64_t c = 0; c < channels; ++c) {
    mean[c] = count > 0 ? sum[c].item<double>() / count : 0.0;
    const double var = count > 0 ? sum_sq[c].item<double>() / count - mean[c] * mean[c] : 0.0;
    std[c] = std::sqrt(std::max(var, 0.0));
    if (std[c] < 1e-6) std[c] = 1.0;  // a constant channel: only centre it
  }
  return {mean, std};
}

DataBundle load_data(const DataConfig& config, const std::string& source,
                     const std::string& listing_cache_dir, const ListingNote& note) {
  // A run folder with listings streamed when it started, and streams on when resumed.
  const bool cached = config.dataset == DatasetKind::kImageFolder &&
                      config.streaming != Streaming::kOff &&
                      has_cached_listing(listing_cache_dir, "train");
  StreamedFolder listed;
  if (cached || decide_streaming(config, source, &listed, note))
    return load_streamed(config, source,
                         listed.train.size() > 0
                             ? std::move(listed)
                             : list_streamed_folder(config, listing_cache_dir, note, source));

  const DatasetSplits splits = read_dataset(config);
  SubsetSplits parts = make_subsets(splits, config, source);

  DataBundle b;
  // Resize after subsetting: only the images we keep pay for it.
  if (config.image_size > 0) {
    b.train = resized(parts.train, config.image_size);
    b.val = resized(parts.val, config.image_size);
    b.test = resized(parts.test, config.image_size);
  } else {
    b.train = std::move(parts.train);
    b.val = std::move(parts.val);
    b.test = std::move(parts.test);
  }
  if (b.train.height() != b.train.width())
    fail<DataError>(
        "{}: images are {}x{} (height x width); set data.image_size to resize them to "
        "a square",
        b.train.name, b.train.height(), b.train.width());
  b.image_size = static_cast<int>(b.train.height());
  b.channels = static_cast<int>(b.train.channels());
  b.num_classes = b.train.num_classes;
  b.class_names = b.train.class_names;
  set_mean_std(b, config, source, [&] {
    auto standard = standard_mean_std(config.dataset);
    return standard.first.empty() ? compute_mean_std(b.train.images) : standard;
  });
  return b;
}

void check_model_fits_data(const ModelConfig& m, const DataBundle& d, const std::string& source) {
  if (m.in_channels != d.channels)
    config_error(source, "model.in_channels",
                 fmt::format("{} but the data set has {} channel(s)", m.in_channels, d.channels));
  if (m.image_size != d.image_size)
    config_error(
        source, "model.image_size",
        fmt::format("{} but the data set's images are {}x{} (set data.image_size to resize)",
                    m.image_size, d.image_size, d.image_size));
  if (m.num_classes != d.num_classes)
    config_error(source, "model.num_classes",
                 fmt::format("{} but the data set has {} classes", m.num_classes, d.num_classes));
}

torch::Tensor DataBundle::train_labels() const {
  if (!streamed) return train.labels.to(torch::kCPU, torch::kLong);
  const auto& labels = streamed->train.labels;
  return torch::tensor(std::vector<int64_t>(labels.begin(), labels.end()), torch::kLong);
}

}  // namespace vitlab
