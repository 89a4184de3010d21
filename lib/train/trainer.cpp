#include "train/trainer.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/build_info.h"
#include "core/compat.h"
#include "core/cpu_runtime.h"
#include "core/duration.h"
#include "data/augment.h"
#include "data/batcher.h"
#include "data/load_data.h"
#include "models/factory.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/optimizer.h"
#include "train/progress.h"
#include "train/schedule.h"
#include "train/train_step.h"
#include "train/weights_init.h"

namespace vitlab {
namespace fs = std::filesystem;

uint64_t epoch_seed(int64_t run_seed, int64_t epoch, uint64_t stream) {
  // splitmix64 over (seed, epoch, stream): well-mixed, independent streams.
  uint64_t z = uint64_t(run_seed) * 0x9E3779B97F4A7C15ull + uint64_t(epoch) * 0xBF58476D1CE4E5B9ull +
               stream * 0x94D049BB133111EBull + 0x2545F4914F6CDD1Dull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

namespace {
using Clock = std::chrono::steady_clock;

// A checkpoint whose tensors are host copies (the live state refers to the model's own tensors).
Checkpoint host_copy(const Checkpoint& state) {
  Checkpoint copy = state;
  for (auto* tensors : {&copy.model, &copy.optimizer})
    for (auto& [name, t] : *tensors) t = t.detach().to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true);
  return copy;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Diverged : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check_model_fits_data(const RunConfig& c, const DataBundle& d, const std::string& source) {
  if (c.model.in_channels != d.channels)
    config_error(source, "model.in_channels",
                 fmt::format("{} but the data set has {} channel(s)", c.model.in_channels, d.channels));
  if (c.model.image_size != d.image_size)
    config_error(source, "model.image_size",
                 fmt::format("{} but the data set's images are {}x{} (set data.image_size to resize)",
                             c.model.image_size, d.image_size, d.image_size));
  if (c.model.num_classes != d.num_classes)
    config_error(source, "model.num_classes",
                 fmt::format("{} but the data set has {} classes", c.model.num_classes, d.num_classes));
}

// Soft targets for one batch: one-hot, or mixup/cutmix when enabled and drawn.
Mixed mix_batch(const torch::Tensor& images, const torch::Tensor& labels, int classes,
                const AugmentConfig& a, AugmentRng& rng) {
  const bool mixup_on = a.mixup_alpha > 0, cutmix_on = a.cutmix_alpha > 0;
  if ((mixup_on || cutmix_on) && rng.uniform() < a.mix_prob) {
    const bool use_cutmix = cutmix_on && (!mixup_on || rng.uniform() < 0.5);
    return use_cutmix ? cutmix(images, labels, classes, a.cutmix_alpha, rng)
                      : mixup(images, labels, classes, a.mixup_alpha, rng);
  }
  return {images, one_hot_targets(labels, classes), 1.0};
}

void write_metrics(const std::string& path, const Json& history) {
  std::string text;
  for (const auto& record : history) text += record.dump() + "\n";
  write_file_atomic(path, text);
}
}  // namespace

Json train_run(const RunConfig& cfg, const TrainOptions& opt) {
  const std::string& source = opt.source;
  // ---- Everything that can be wrong with the input is checked before anything is written.
  const DeviceChoice dev = parse_device(opt.device.empty() ? cfg.device : opt.device,
                                        opt.device.empty() ? "device" : "--device");
  const torch::Device device = dev.cuda ? torch::Device(torch::kCUDA, dev.index) : torch::Device(torch::kCPU);
  const bool bf16 = cfg.train.precision == Precision::kBf16;
  if (bf16 && !dev.cuda)
    config_error(source, "train.precision", "\"bf16\" needs a CUDA device; CPU runs use \"fp32\"");
  const int cpu_threads = configure_cpu_threads(cfg.train.threads);

  DataBundle data = load_data(cfg.data, source);
  check_model_fits_data(cfg, data, source);
  const int64_t steps_per_epoch = batches_per_epoch(data.train.size(), cfg.train.batch_size, true);
  if (steps_per_epoch == 0)
    config_error(source, "train.batch_size",
                 fmt::format("{} is larger than the training set ({} images)", cfg.train.batch_size,
                             data.train.size()));

  const fs::path out(opt.out_dir);
  const std::string config_path = (out / "config.json").string();
  const std::string result_path = (out / "result.json").string();
  const std::string metrics_path = (out / "metrics.jsonl").string();
  const std::string last_path = (out / "checkpoints" / "last.pt").string();
  const std::string best_path = (out / "checkpoints" / "best.pt").string();
  const Json resolved = cfg.to_json();

  std::optional<Checkpoint> resume_from;
  if (opt.resume && fs::exists(last_path)) {
    resume_from = load_checkpoint(last_path);
    // A run may move between devices or change how often it logs and checkpoints.
    if (without_bookkeeping_keys(resume_from->config) != without_bookkeeping_keys(resolved))
      throw UserError(fmt::format("{}: the checkpoint was written for another config; resume with "
                                  "the config in {} or start a new run in another folder",
                                  last_path, config_path));
  } else if (fs::exists(result_path) || fs::exists(last_path)) {
    throw UserError(fmt::format("{} already holds a run; use --resume to continue it or choose "
                                "another --out (nothing is overwritten)",
                                out.string()));
  }
  ensure_writable_dir(out.string());
  ensure_writable_dir((out / "checkpoints").string());
  write_json_file_atomic(config_path, resolved);

  // ---- Model, optimiser, state.
  torch::manual_seed(cfg.seed);
  ImageClassifier model = build_model(cfg.model);
  std::optional<WeightsImportReport> init_report;
  if (!cfg.init_from.empty() && !resume_from) init_report = init_weights_from(*model, cfg.init_from);
  model->to(device);
  std::vector<OptimizerParam> params;
  for (const auto& p : model->named_parameters(true))
    params.push_back({p.key(), p.value(), !model->skip_weight_decay(p.key())});
  Optimizer optimizer(params, cfg.train, cfg.train.fast_path);
  const LrScheduleFn schedule(cfg.train, steps_per_epoch);
  // CUDA fast path (train.fast_path): fused optimiser kernels and a CUDA-graph captured step.
  TrainStep train_step(model, optimizer, cfg.train, device, cfg.train.fast_path);

  Checkpoint state;
  state.config = resolved;
  if (resume_from) {
    load_module_state(*model, resume_from->model, last_path);
    optimizer.load_state(resume_from->optimizer);
    state = *resume_from;
    state.config = resolved;
  }
  write_metrics(metrics_path, state.history);  // drops records of an epoch that was cut off

  DeviceDataset train_set(data.train, device), val_set(data.val, device), test_set(data.test, device);
  Normalizer normalize(data.mean, data.std, device);
  const int64_t params_count = count_parameters(*model);
  Progress progress(cfg.train.epochs, steps_per_epoch, cfg.train.log_every, opt.quiet);
  if (resume_from)
    progress.message(fmt::format("resuming {} after epoch {}", out.string(), state.epochs_done));
  if (init_report) progress.message("init_from " + init_report->summary());

  Json result = {{"status", "running"}, {"parameters", params_count}, {"device", dev.str()}, {"cpu_threads", cpu_threads},
                 {"git_commit", git_commit()}, {"torch_version", torch_version()},
                 {"train_images", data.train.size()}, {"val_images", data.val.size()},
                 {"test_images", data.test.size()}, {"config", resolved}};
  // What init_from did (resized position embeddings, a re-initialised head). A resumed run took
  // its weights from its own checkpoint; the report of its first start is in that start's log.
  if (init_report) result["init_from"] = init_report->to_json();
  else if (!cfg.init_from.empty()) result["init_from"] = Json{{"source", cfg.init_from}, {"resumed", true}};
  const auto& aug = cfg.data.augment;
  const int64_t check_every = dev.cuda ? 50 : 1;  // NaN checks sync the device
  int64_t images_trained = 0;
  double train_seconds_now = 0;
  std::optional<Checkpoint> pending_best;  // a best state not yet written (checkpoint_every > 1)
  try {
    for (int64_t epoch = state.epochs_done; epoch < cfg.train.epochs; ++epoch) {
      model->train();
      torch::manual_seed(epoch_seed(cfg.seed, epoch, 1));  // dropout / stochastic depth
      AugmentRng rng(epoch_seed(cfg.seed, epoch, 2));
      EpochBatches batches(train_set, cfg.train.batch_size, true, true,
                           epoch_seed(cfg.seed, 0, 3), epoch);
      auto loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat).device(device));
      auto correct = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(device));
      const auto epoch_start = Clock::now();
      double lr = 0;
      for (int64_t i = 0; i < steps_per_epoch; ++i) {
        Batch b = batches.batch(i);
        auto x = b.images;
        if (aug.crop_padding > 0) x = random_crop(x, aug.crop_padding, rng);
        if (aug.flip) x = random_flip(x, 0.5, rng);
        auto xf = normalize(x);
        if (aug.random_erasing > 0) xf = random_erasing(xf, aug.random_erasing, rng);
        Mixed m = mix_batch(xf, b.labels, data.num_classes, aug, rng);
        lr = schedule(state.steps_done);
        const StepOutput out = train_step.run(m.images, m.targets, lr);
        const torch::Tensor& loss = out.loss;
        ++state.steps_done;
        loss_sum += loss;
        correct += out.logits.argmax(1).eq(b.labels).sum();
        if ((i + 1) % check_every == 0 || i + 1 == steps_per_epoch || progress.live() ||
            cfg.train.log_every > 0) {
          const double value = loss.item<double>();
          if (!std::isfinite(value))
            throw Diverged(fmt::format("loss became {} at epoch {} step {}", value, epoch + 1, i + 1));
          const double elapsed = seconds_since(epoch_start);
          const double ips = double((i + 1) * cfg.train.batch_size) / std::max(elapsed, 1e-9);
          const double remaining_steps =
              double(steps_per_epoch - i - 1) + double(cfg.train.epochs - epoch - 1) * steps_per_epoch;
          progress.step(int(epoch), i, value, lr, ips, remaining_steps * cfg.train.batch_size / ips);
        }
      }
      const double mean_loss = loss_sum.item<double>() / double(steps_per_epoch);
      if (!std::isfinite(mean_loss))
        throw Diverged(fmt::format("mean training loss {} in epoch {}", mean_loss, epoch + 1));
      const double epoch_seconds = seconds_since(epoch_start);
      const int64_t epoch_images = steps_per_epoch * cfg.train.batch_size;
      images_trained += epoch_images;
      train_seconds_now += epoch_seconds;
      state.train_seconds += epoch_seconds;

      const EvalResult val = evaluate(*model, val_set, normalize, cfg.train.eval_batch_size, bf16);
      Json record = {{"epoch", epoch + 1},
                     {"step", state.steps_done},
                     {"lr", lr},
                     {"train_loss", mean_loss},
                     {"train_accuracy", double(correct.item<int64_t>()) / double(epoch_images)},
                     {"epoch_seconds", epoch_seconds},
                     {"images_per_second", double(epoch_images) / epoch_seconds}};
      if (val.count > 0) {
        record["val_loss"] = val.loss;
        record["val_accuracy"] = val.accuracy;
      }
      state.epochs_done = epoch + 1;
      state.history.push_back(record);
      state.model = module_state(*model);
      state.optimizer = optimizer.state();
      const bool write_now =
          (epoch + 1) % cfg.train.checkpoint_every == 0 || epoch + 1 == cfg.train.epochs;
      if (val.count > 0 && val.accuracy > state.best_val_accuracy) {
        state.best_val_accuracy = val.accuracy;
        state.best_epoch = epoch + 1;
        // Between checkpoint epochs the best state waits in host memory; best.pt is written
        // before last.pt, so a resume from last.pt never sees a best.pt newer than itself.
        if (!write_now) pending_best = host_copy(state);
      }
      if (write_now) {
        if (state.best_epoch == epoch + 1) save_checkpoint(best_path, state);
        else if (pending_best) save_checkpoint(best_path, *pending_best);
        pending_best.reset();
        save_checkpoint(last_path, state);
      }
      write_metrics(metrics_path, state.history);
      progress.epoch_done(fmt::format(
          "epoch {}/{} loss {:.4f} train acc {:.2f}%{} {:.0f} img/s {}", epoch + 1,
          cfg.train.epochs, mean_loss, 100.0 * record["train_accuracy"].get<double>(),
          val.count > 0 ? fmt::format(" val acc {:.2f}%", 100.0 * val.accuracy) : "",
          record["images_per_second"].get<double>(), format_duration(epoch_seconds)));
    }
    if (val_set.size() == 0) save_checkpoint(best_path, state);  // no validation: best = last
    const EvalResult test = evaluate(*model, test_set, normalize, cfg.train.eval_batch_size, bf16);
    result["status"] = "completed";
    result["test_accuracy"] = test.accuracy;
    result["test_loss"] = test.loss;
  } catch (const Diverged& e) {
    if (pending_best) save_checkpoint(best_path, *pending_best);  // the weights before it diverged
    result["status"] = "diverged";
    result["error"] = e.what();
  } catch (const UserError&) {
    throw;
  } catch (const c10::Error& e) {
    result["status"] = "failed";
    result["error"] = e.what_without_backtrace();
  } catch (const std::exception& e) {
    result["status"] = "failed";
    result["error"] = e.what();
  }
  result["epochs_completed"] = state.epochs_done;
  result["steps"] = state.steps_done;
  result["best_val_accuracy"] = state.best_val_accuracy >= 0 ? Json(state.best_val_accuracy) : Json();
  result["best_epoch"] = state.best_epoch >= 0 ? Json(state.best_epoch) : Json();
  result["train_seconds"] = state.train_seconds;
  result["images_per_second"] = train_seconds_now > 0 ? double(images_trained) / train_seconds_now : 0.0;
  write_json_file_atomic(result_path, result);
  progress.message(fmt::format("{}: {}{}", out.string(), result["status"].get<std::string>(),
                               result.contains("test_accuracy")
                                   ? fmt::format(", test accuracy {:.2f}%",
                                                 100.0 * result["test_accuracy"].get<double>())
                                   : ""));
  return result;
}

}  // namespace vitlab
