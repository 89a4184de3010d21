#include "train/checkpoint.h"

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "formats/torch_archive.h"

namespace vitlab {
namespace {

void write_group(torch::serialize::OutputArchive& archive, const std::string& key,
                 const NamedTensors& tensors) {
  // Names go into one string list and tensors are numbered, because module paths contain dots,
  // which the archive uses as its own separator.
  std::vector<std::string> names;
  torch::serialize::OutputArchive group;
  for (size_t i = 0; i < tensors.size(); ++i) {
    names.push_back(tensors[i].first);
    group.write(std::to_string(i), tensors[i].second.detach().to(torch::kCPU));
  }
  archive.write(key, group);
  Json list = names;
  archive.write(key + "_names", c10::IValue(list.dump()));
}

NamedTensors read_group(torch::serialize::InputArchive& archive, const std::string& key) {
  c10::IValue names_value;
  archive.read(key + "_names", names_value);
  const Json names = Json::parse(names_value.toStringRef());
  torch::serialize::InputArchive group;
  archive.read(key, group);
  NamedTensors out;
  for (size_t i = 0; i < names.size(); ++i) {
    torch::Tensor t;
    group.read(std::to_string(i), t);
    out.emplace_back(names[i].get<std::string>(), t);
  }
  return out;
}

std::string read_string(torch::serialize::InputArchive& archive, const std::string& key) {
  c10::IValue v;
  archive.read(key, v);
  return v.toStringRef();
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  torch::serialize::OutputArchive archive;
  const int64_t version = c.epoch_position.is_null() ? kCheckpointFormatVersion : kCheckpointInsideEpochVersion;
  archive.write("vitlab_format_version", c10::IValue(version));
  const Json meta = {{"epochs_done", c.epochs_done},
                     {"steps_done", c.steps_done},
                     {"best_val_accuracy", c.best_val_accuracy},
                     {"best_epoch", c.best_epoch},
                     {"train_seconds", c.train_seconds},
                     {"world_size", c.world_size},
                     {"history", c.history},
                     {"epoch_position", c.epoch_position}};
  archive.write("config", c10::IValue(c.config.dump()));
  archive.write("meta", c10::IValue(meta.dump()));
  write_group(archive, "model", c.model);
  write_group(archive, "optimizer", c.optimizer);
  if (!c.rng.empty()) write_group(archive, "rng", c.rng);
  write_archive_atomic(path, archive);
}

Checkpoint load_checkpoint(const std::string& path) {
  if (!std::filesystem::exists(path)) throw IoError(fmt::format("{}: no such checkpoint", path));
  Checkpoint c;
  try {
    // LibTorch's reader trusts the sizes a file declares (formats/torch_archive.h).
    check_torch_archive(path);
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    c10::IValue version;
    if (!archive.try_read("vitlab_format_version", version))
      throw IoError(fmt::format("{}: not a vitlab checkpoint (no format version)", path));
    const int64_t format_version = version.toInt();
    if (format_version != kCheckpointFormatVersion && format_version != kCheckpointInsideEpochVersion)
      throw IoError(fmt::format(
          "{}: checkpoint format version {}, this vitlab reads versions {} and {}; load it with the "
          "vitlab that wrote it and `vitlab export --format safetensors`, then `vitlab import`",
          path, format_version, kCheckpointFormatVersion, kCheckpointInsideEpochVersion));
    c.config = Json::parse(read_string(archive, "config"));
    const Json meta = Json::parse(read_string(archive, "meta"));
    c.epochs_done = meta.at("epochs_done").get<int64_t>();
    c.steps_done = meta.at("steps_done").get<int64_t>();
    c.best_val_accuracy = meta.at("best_val_accuracy").get<double>();
    c.best_epoch = meta.at("best_epoch").get<int64_t>();
    c.train_seconds = meta.at("train_seconds").get<double>();
    c.world_size = meta.value("world_size", int64_t(1));  // absent before data-parallel training
    c.history = meta.at("history");
    c.model = read_group(archive, "model");
    c.optimizer = read_group(archive, "optimizer");
    c.epoch_position = meta.value("epoch_position", Json());  // absent: at an epoch boundary
    c10::IValue rng_names;
    if (archive.try_read("rng_names", rng_names)) c.rng = read_group(archive, "rng");
  } catch (const IoError&) {
    throw;
  } catch (const c10::Error& e) {
    throw IoError(fmt::format("{}: not a readable vitlab checkpoint (corrupt or truncated?): {}",
                              path, e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw IoError(fmt::format("{}: not a readable vitlab checkpoint: {}", path, e.what()));
  }
  return c;
}

Checkpoint host_copy(const Checkpoint& state) {
  Checkpoint copy = state;
  for (auto* tensors : {&copy.model, &copy.optimizer, &copy.rng})
    for (auto& [name, t] : *tensors) t = t.detach().to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true);
  return copy;
}

}  // namespace vitlab
