// Data set, subset, normalisation and augmentation settings.
#pragma once
#include <string>
#include <vector>

#include "config/json_reader.h"

namespace vitlab {

enum class DatasetKind { kFashionMnist, kMnistFormat, kCifar10, kCifar100, kImageFolder, kSynthetic };
const EnumNames<DatasetKind>& dataset_kind_names();

// Which side of the train_size / per_class draw trains: the drawn subset, or the images the draw
// left out (pretraining on the rest of a set whose subset fine-tunes, with the same subset_seed).
enum class TrainPart { kSubset, kRest };
const EnumNames<TrainPart>& train_part_names();

// Streamed image folders (data too large to keep decoded; lib/data/stream_loader.h): "auto"
// streams an image folder whose decoded training and test images would exceed the memory budget.
enum class Streaming { kAuto, kOn, kOff };
const EnumNames<Streaming>& streaming_names();

// A file of a streamed folder that cannot be decoded: "skip" (counted, named in a warning, the
// next file of the listing stands in) or "error" (the run stops naming the file).
enum class BadImagePolicy { kSkip, kError };
const EnumNames<BadImagePolicy>& bad_image_policy_names();

// Who decodes a streamed folder's JPEGs: the CPU threads (libjpeg-turbo), or "nvjpeg", the CUDA
// device's JPEG engines through the toolkit's nvJPEG (GPU builds with nvJPEG only;
// lib/data/nvjpeg_decoder.h). The crops are drawn the same either way.
enum class Decoder { kCpu, kNvjpeg };
const EnumNames<Decoder>& decoder_names();

struct AugmentConfig {
  // timm's RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3) of each decoded image; streamed image
  // folders only, whose images differ in size (in-memory sets are resized when read).
  bool random_resized_crop = false;
  // timm's RandAugment of each decoded image, by its spec ("rand-m9-mstd0.5"); "" = off. Streamed
  // image folders only (config/rand_augment_config.h).
  std::string rand_augment;
  int crop_padding = 0;          // random crop after zero padding by this many pixels; 0 = off
  bool flip = false;             // random horizontal flip
  double random_erasing = 0.0;   // probability of erasing one random rectangle per image
  double mixup_alpha = 0.0;      // 0 = off
  double cutmix_alpha = 0.0;     // 0 = off
  double mix_prob = 1.0;         // probability that a batch is mixed (when mixup/cutmix on)
};

struct DataConfig {
  DatasetKind dataset = DatasetKind::kFashionMnist;
  // Folder with the files. Empty for fashion-mnist = the Debian package's folder
  // (/usr/share/datasets/fashion-mnist, or third_party/staged/data/fashion-mnist where that is
  // missing); required for the other kinds except synthetic. Layouts: lib/data/*_reader.h.
  std::string path;
  int64_t train_size = 0;    // stratified subset of the training set; 0 = all
  int64_t per_class = 0;     // alternative to train_size: this many images of each class
  TrainPart train_part = TrainPart::kSubset;  // "rest": the training images the draw left out
  int64_t val_size = 0;      // held out from the training set (stratified) for validation
  int64_t test_size = 0;     // stratified subset of the official test set; 0 = all
  int image_size = 0;        // resize to this (bilinear); 0 = the data set's own size
  std::vector<double> mean;  // per channel; empty = the data set's standard values
  std::vector<double> std;
  int64_t subset_seed = 0;   // seed of the subset/split draw and of synthetic images
                             // (independent of the run's seed)
  AugmentConfig augment;
  Streaming streaming = Streaming::kAuto;
  double memory_budget_gb = 0;  // the budget "auto" compares with; 0 = half of the machine's memory
  BadImagePolicy on_bad_image = BadImagePolicy::kSkip;
  int decode_threads = 0;   // streamed decoding threads; 0 = the machine's cores / its ranks
  Decoder decoder = Decoder::kCpu;  // streamed JPEGs: "cpu" or "nvjpeg" (streaming "on")
  double crop_pct = 0.875;  // streamed evaluation: shorter side to image_size / crop_pct, centre crop
  // Synthetic data (tests, benchmarks): class-dependent patterns plus noise.
  int synthetic_classes = 10;
  int64_t synthetic_train = 1000;
  int64_t synthetic_test = 200;
  int synthetic_image_size = 28;
  int synthetic_channels = 1;

  void read(JsonReader& reader);
  Json to_json() const;
  void validate(const std::string& source = "", const std::string& path = "data") const;
  // Whether train_size, per_class, val_size or test_size draws a subset or splits off images.
  bool has_subsets() const;
};

}  // namespace vitlab
