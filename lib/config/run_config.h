// One training run's complete settings: what `vitlab train` reads, what every run folder and
// checkpoint stores in resolved form (all defaults filled).
#pragma once
#include <c10/core/Device.h>

#include <string>
#include <vector>

#include "config/data_config.h"
#include "config/model_config.h"
#include "config/train_config.h"

namespace vitlab {

// What happens to the parts of init_from's weights that a transfer replaces (the paper's Sec. 3.2
// and B.1.1: the pretraining head is removed and a zero-initialised linear head takes its place;
// at a higher resolution the position embedding is interpolated).
enum class InitHead { kZero, kKeep };
const EnumNames<InitHead>& init_head_names();
enum class InitPosEmbed { kAuto, kBilinear, kBicubic, kFresh };
const EnumNames<InitPosEmbed>& init_pos_embed_names();

struct RunConfig {
  std::string description;  // free text: what this run tests
  int64_t seed = 0;
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  std::string init_from;        // checkpoint or weights file to start from; empty = random init
  // With init_from: "zero" starts the classifier head (and drops a pre-logits layer the model does
  // not have) at zero, as the paper's transfer; "keep" loads it when the shapes fit.
  InitHead init_head = InitHead::kZero;
  // With init_from, when the token grid differs: interpolate the stored embedding (auto: bilinear
  // for .npz as vit_jax/big_vision, bicubic otherwise as timm), or "fresh": the model's own
  // initial embedding, trained from scratch (the "without interpolation" control).
  InitPosEmbed init_pos_embed = InitPosEmbed::kAuto;
  ModelConfig model;
  DataConfig data;
  TrainConfig train;

  Json to_json() const;
  // Cross-section checks (model vs data); the sections validate themselves when read.
  void validate(const std::string& source = "") const;
};

// Keys of a resolved config that change how a run is carried out but not what it computes (where
// it runs, how often it logs or checkpoints). A resumed run or a sweep's existing run folder may
// differ from the planned config in these, and only in these.
bool is_bookkeeping_key(const std::string& dotted_path);
// The resolved config without those keys: what two runs must share to be the same run.
Json without_bookkeeping_keys(Json resolved);

// Reads and validates a run config. `model.name` is required; everything else has defaults.
RunConfig read_run_config(const Json& json, const std::string& source = "");

// Applies `key=value` overrides (dotted paths, e.g. `model.pos_embed=learned_2d`) to a JSON
// config before it is read, so they go through the same validation. Values are parsed as JSON
// when they parse (numbers, true/false, lists) and taken as strings otherwise. Unknown paths
// are caught by the strict reader afterwards; a path through a non-object is an error here.
void apply_override(Json& json, const std::string& assignment, const std::string& source = "--set");
Json with_overrides(Json json, const std::vector<std::string>& assignments,
                    const std::string& source = "--set");

// Parses "cpu", "cuda", "cuda:N" or "auto" into a device; ConfigError naming `key` otherwise,
// also when CUDA is asked for and absent.
struct DeviceChoice {
  bool cuda = false;
  int index = 0;
  std::string str() const { return cuda ? "cuda:" + std::to_string(index) : "cpu"; }
  // The device, made the process's current CUDA device when it is one: the fast path's
  // hand-written kernels launch on the current device (a run on cuda:1 would otherwise launch
  // them on cuda:0 with cuda:1's memory: an illegal address).
  c10::Device use() const;  // torch::Device
};
bool is_device_string(const std::string& text);
DeviceChoice parse_device(const std::string& text, const std::string& key = "device");

}  // namespace vitlab
