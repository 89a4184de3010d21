// From a DataConfig to the tensors a run trains on: read, subset, split, resize, statistics.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/data_config.h"
#include "config/model_config.h"
#include "data/dataset.h"
#include "data/streamed_folder.h"

namespace vitlab {

struct DataBundle {
  Dataset train;  // after subsetting, minus the validation images
  Dataset val;    // zero rows when data.val_size is 0
  Dataset test;
  std::vector<double> mean;  // per channel, for pixel values scaled to [0, 1]
  std::vector<double> std;
  int image_size = 0;  // H == W of every image
  int channels = 0;
  int num_classes = 0;
  std::vector<std::string> class_names;
  // Set when the image folder is streamed (data.streaming): train, val and test then hold no
  // images, and the listings say which files the splits are.
  std::shared_ptr<const StreamedFolder> streamed;

  int64_t train_count() const { return streamed ? streamed->train.size() : train.size(); }
  int64_t test_count() const { return streamed ? streamed->test.size() : test.size(); }
  int64_t val_count() const { return streamed ? streamed->val.size() : val.size(); }
  // The training part's labels (N) int64 on the CPU: a streamed folder's from its listing.
  torch::Tensor train_labels() const;
};

// The official train/test splits of the configured data set (before subsetting or resizing).
// Throws DataError naming the file for any missing or bad input.
DatasetSplits read_dataset(const DataConfig& config);

// Reads, subsets, splits and resizes as `config` says. mean/std are data.mean/data.std when
// given (their length must equal the channel count: ConfigError naming data.mean), else the
// data set's standard values (fashion-mnist, cifar10, cifar100), else computed from the final
// training images; a streamed folder without data.mean uses timm's ImageNet values. Images that
// end up non-square are a DataError (set data.image_size). `source` (the config file's name)
// prefixes ConfigError messages. A streamed folder's listings come from `listing_cache_dir`
// when it holds them (data/streamed_folder.h: a resumed run streams the files it started with).
// `note` receives a large folder's listing progress.
DataBundle load_data(const DataConfig& config, const std::string& source = "",
                     const std::string& listing_cache_dir = "", const ListingNote& note = {});

// The published per-channel statistics of a data set; empty vectors when there are none
// (mnist-format, image-folder, synthetic: those are computed from the training images).
std::pair<std::vector<double>, std::vector<double>> standard_mean_std(DatasetKind kind);

// Per-channel mean and standard deviation of (N, C, H, W) uint8 images scaled to [0, 1],
// accumulated in double over chunks. A channel with zero spread gets std 1.
std::pair<std::vector<double>, std::vector<double>> compute_mean_std(const torch::Tensor& images);

// ConfigError naming model.in_channels, model.image_size or model.num_classes when the model does
// not fit the loaded data.
void check_model_fits_data(const ModelConfig& model, const DataBundle& data,
                           const std::string& source);

}  // namespace vitlab
