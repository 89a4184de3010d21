#include "config/data_config.h"

#include "config/rand_augment_config.h"

namespace vitlab {

const EnumNames<DatasetKind>& dataset_kind_names() {
  static const EnumNames<DatasetKind> n = {{DatasetKind::kFashionMnist, "fashion-mnist"},
                                           {DatasetKind::kMnistFormat, "mnist-format"},
                                           {DatasetKind::kCifar10, "cifar10"},
                                           {DatasetKind::kCifar100, "cifar100"},
                                           {DatasetKind::kImageFolder, "image-folder"},
                                           {DatasetKind::kSynthetic, "synthetic"}};
  return n;
}

const EnumNames<TrainPart>& train_part_names() {
  static const EnumNames<TrainPart> n = {{TrainPart::kSubset, "subset"}, {TrainPart::kRest, "rest"}};
  return n;
}

const EnumNames<Streaming>& streaming_names() {
  static const EnumNames<Streaming> n = {
      {Streaming::kAuto, "auto"}, {Streaming::kOn, "on"}, {Streaming::kOff, "off"}};
  return n;
}

const EnumNames<BadImagePolicy>& bad_image_policy_names() {
  static const EnumNames<BadImagePolicy> n = {{BadImagePolicy::kSkip, "skip"},
                                              {BadImagePolicy::kError, "error"}};
  return n;
}

const EnumNames<Decoder>& decoder_names() {
  static const EnumNames<Decoder> n = {{Decoder::kCpu, "cpu"}, {Decoder::kNvjpeg, "nvjpeg"}};
  return n;
}

void DataConfig::read(JsonReader& r) {
  r.read_enum("dataset", dataset, dataset_kind_names());
  r.read("path", path);
  r.read("train_size", train_size, 0);
  r.read("per_class", per_class, 0);
  r.read_enum("train_part", train_part, train_part_names());
  r.read("val_size", val_size, 0);
  r.read("test_size", test_size, 0);
  r.read("image_size", image_size, 0, 8192);
  r.read("mean", mean, -1e6, 1e6);
  r.read("std", std, 1e-12, 1e6);
  r.read("subset_seed", subset_seed, 0);
  JsonReader a = r.child("augment");
  a.read("random_resized_crop", augment.random_resized_crop);
  a.read("rand_augment", augment.rand_augment);
  a.read("crop_padding", augment.crop_padding, 0, 1024);
  a.read("flip", augment.flip);
  a.read("random_erasing", augment.random_erasing, 0.0, 1.0);
  a.read("mixup_alpha", augment.mixup_alpha, 0.0, 100.0);
  a.read("cutmix_alpha", augment.cutmix_alpha, 0.0, 100.0);
  a.read("mix_prob", augment.mix_prob, 0.0, 1.0);
  a.finish();
  r.read_enum("streaming", streaming, streaming_names());
  r.read("memory_budget_gb", memory_budget_gb, 0.0, 1e6);
  r.read_enum("on_bad_image", on_bad_image, bad_image_policy_names());
  r.read("decode_threads", decode_threads, 0, 1024);
  r.read_enum("decoder", decoder, decoder_names());
  r.read("crop_pct", crop_pct, 0.01, 1.0);
  r.read("synthetic_classes", synthetic_classes, 2, 100000);
  r.read("synthetic_train", synthetic_train, 1);
  r.read("synthetic_test", synthetic_test, 1);
  r.read("synthetic_image_size", synthetic_image_size, 1, 4096);
  r.read("synthetic_channels", synthetic_channels, 1, 64);
}

Json DataConfig::to_json() const {
  return Json{{"dataset", enum_name(dataset, dataset_kind_names())},
              {"path", path},
              {"train_size", train_size},
              {"per_class", per_class},
              {"train_part", enum_name(train_part, train_part_names())},
              {"val_size", val_size},
              {"test_size", test_size},
              {"image_size", image_size},
              {"mean", mean},
              {"std", std},
              {"subset_seed", subset_seed},
              {"augment",
               {{"random_resized_crop", augment.random_resized_crop},
                {"rand_augment", augment.rand_augment},
                {"crop_padding", augment.crop_padding},
                {"flip", augment.flip},
                {"random_erasing", augment.random_erasing},
                {"mixup_alpha", augment.mixup_alpha},
                {"cutmix_alpha", augment.cutmix_alpha},
                {"mix_prob", augment.mix_prob}}},
              {"streaming", enum_name(streaming, streaming_names())},
              {"memory_budget_gb", memory_budget_gb},
              {"on_bad_image", enum_name(on_bad_image, bad_image_policy_names())},
              {"decode_threads", decode_threads},
              {"decoder", enum_name(decoder, decoder_names())},
              {"crop_pct", crop_pct},
              {"synthetic_classes", synthetic_classes},
              {"synthetic_train", synthetic_train},
              {"synthetic_test", synthetic_test},
              {"synthetic_image_size", synthetic_image_size},
              {"synthetic_channels", synthetic_channels}};
}

void DataConfig::validate(const std::string& source, const std::string& path) const {
  auto bad = [&](const std::string& key, const std::string& message) {
    config_error(source, join_path(path, key), message);
  };
  if (train_size > 0 && per_class > 0)
    bad("per_class", "give either train_size or per_class, not both");
  if (mean.size() != std.size())
    bad("std", fmt::format("has {} values but mean has {}", std.size(), mean.size()));
  const bool needs_path = dataset != DatasetKind::kFashionMnist && dataset != DatasetKind::kSynthetic;
  if (needs_path && path.empty())
    bad("path", fmt::format("required for dataset \"{}\"", enum_name(dataset, dataset_kind_names())));
  if (train_part == TrainPart::kRest && train_size == 0 && per_class == 0)
    bad("train_part", "\"rest\" is what a train_size or per_class draw leaves out; set one of them");
  const bool folder = dataset == DatasetKind::kImageFolder;
  if (streaming == Streaming::kOn && !folder)
    bad("streaming", "\"on\" streams image folders only (data.dataset \"image-folder\")");
  if (augment.random_resized_crop && (!folder || streaming == Streaming::kOff))
    bad("augment.random_resized_crop",
        "applies to streamed image folders only (data.dataset \"image-folder\", data.streaming "
        "\"auto\" or \"on\"); in-memory images are resized when read: use crop_padding");
  if (!augment.rand_augment.empty()) {
    if (!folder || streaming == Streaming::kOff)
      bad("augment.rand_augment",
          "applies to streamed image folders only (data.dataset \"image-folder\", data.streaming "
          "\"auto\" or \"on\")");
    parse_rand_augment(augment.rand_augment, source, join_path(path, "augment.rand_augment"));
  }
  if (decoder == Decoder::kNvjpeg) {
    if (!folder || streaming != Streaming::kOn)
      bad("decoder",
          "\"nvjpeg\" decodes streamed image folders: set data.dataset \"image-folder\" and "
          "data.streaming \"on\"");
    if (!augment.rand_augment.empty())
      bad("decoder",
          "\"nvjpeg\" leaves the crops on the GPU, and data.augment.rand_augment runs on the "
          "CPU: use data.decoder \"cpu\" with RandAugment");
  }
  if (streaming == Streaming::kOn && image_size == 0)
    bad("image_size", "required when streaming: the folder's images differ in size");
  if (train_part == TrainPart::kSubset && train_size > 0 && val_size >= train_size)
    bad("val_size", fmt::format("{} leaves no training images out of train_size {}", val_size,
                                train_size));
}

bool DataConfig::has_subsets() const {
  return train_size > 0 || per_class > 0 || val_size > 0 || test_size > 0;
}

}  // namespace vitlab
