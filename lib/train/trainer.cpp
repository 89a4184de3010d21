// One process's training run (train_run.h); train_run_parallel.cpp adds what data-parallel
// ranks need.
#include "train/trainer.h"

#include <csignal>
#include <cstdio>
#include <cmath>
#include <limits>

#include "config/json_reader.h"
#include "core/atomic_file.h"
#include "core/build_info.h"
#include "core/compat.h"
#include "core/cpu_runtime.h"
#include "core/duration.h"
#include "data/nvjpeg_decoder.h"
#include "models/factory.h"
#include "train/train_run.h"

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

namespace training {
namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void write_metrics(const std::string& path, const Json& history) {
  std::string text;
  for (const auto& record : history) text += record.dump() + "\n";
  write_file_atomic(path, text);
}

RunFiles run_files(const std::string& out_dir) {
  const std::filesystem::path out(out_dir);
  return {out,
          (out / "config.json").string(),
          (out / "result.json").string(),
          (out / "metrics.jsonl").string(),
          (out / "checkpoints" / "last.pt").string(),
          (out / "checkpoints" / "best.pt").string()};
}

}  // namespace

TrainRun::TrainRun(const RunConfig& cfg, const TrainOptions& opt)
    : cfg_(cfg), opt_(opt), source_(opt.source), files_(run_files(opt.out_dir)), resolved_(cfg.to_json()) {
  check_input();
  prepare_folder();
  build_model_and_state();
  prepare_data_and_result();
}

// Device, precision, threads and data: UserError before anything is written.
void TrainRun::check_input() {
  dev_ = parse_device(opt_.device.empty() ? cfg_.device : opt_.device,
                      opt_.device.empty() ? "device" : "--device");
  if (opt_.dist.distributed() && dev_.cuda) use_local_gpu();
  device_ = dev_.use();
  bf16_ = cfg_.train.precision == Precision::kBf16;
  if (bf16_ && !dev_.cuda)
    config_error(source_, "train.precision", "\"bf16\" needs a CUDA device; CPU runs use \"fp32\"");
  if (cfg_.data.decoder == Decoder::kNvjpeg && !(have_nvjpeg() && dev_.cuda))
    config_error(source_, "data.decoder",
                 have_nvjpeg() ? "\"nvjpeg\" decodes on a CUDA device; CPU runs use \"cpu\""
                               : "\"nvjpeg\": this vitlab was built without nvJPEG (a GPU build "
                                 "finds it in the CUDA toolkit); use \"cpu\"");
  cpu_threads_ = configure_cpu_threads(cfg_.train.threads);

  // A resumed stream's listings come from the run folder; a large folder's listing shows progress.
  const bool talk = !opt_.quiet && opt_.dist.rank == 0;
  data_ = load_data(cfg_.data, source_, files_.dir.string(), [talk](const std::string& line) {
    if (talk) std::fprintf(stderr, "%s\n", line.c_str());
  });
  check_model_fits_data(cfg_.model, data_, source_);
  if (!cfg_.train.fewshot.shots.empty())
    check_fewshot(data_.train_labels(), data_.num_classes, fewshot_options());
  steps_per_epoch_ = batches_per_epoch(data_.train_count(), cfg_.train.batch_size, true);
  if (steps_per_epoch_ == 0)
    config_error(source_, "train.batch_size",
                 fmt::format("{} is larger than the training set ({} images)", cfg_.train.batch_size,
                             data_.train_count()));
  if (opt_.dist.distributed()) join_group();
}
// A new run needs a folder without one; a resumed run needs its own checkpoint's config.
void TrainRun::prepare_folder() {
  on_main("folder", [this] { prepare_own_folder(); });
}

void TrainRun::prepare_own_folder() {
  const int64_t world = dp_ ? dp_->world_size() : 1;
  if (opt_.resume && fs::exists(files_.last)) {
    resume_from_ = load_checkpoint(files_.last);
    if (resume_from_->world_size != world)
      throw UserError(fmt::format(
          "{}: written by a run of {} process(es), resumed with {}: resume it with WORLD_SIZE {} "
          "(torchrun --nproc_per_node ...), or start a new run from its weights with \"init_from\": \"{}\"",
          files_.last, resume_from_->world_size, world, resume_from_->world_size, files_.last));
    // A run may move between devices or change how often it logs and checkpoints.
    if (without_bookkeeping_keys(resume_from_->config) != without_bookkeeping_keys(resolved_))
      throw UserError(fmt::format("{}: the checkpoint was written for another config; resume with "
                                  "the config in {} or start a new run in another folder",
                                  files_.last, files_.config));
  } else if (fs::exists(files_.result) || fs::exists(files_.last)) {
    throw UserError(fmt::format("{} already holds a run; use --resume to continue it or choose "
                                "another --out (nothing is overwritten)",
                                files_.dir.string()));
  }
  ensure_writable_dir(files_.dir.string());
  ensure_writable_dir((files_.dir / "checkpoints").string());
  // A process killed while writing leaves its temporary file; the file it was replacing is intact.
  if (opt_.resume)
    for (const auto& dir : {files_.dir, files_.dir / "checkpoints"}) remove_write_leftovers(dir.string());
  // The result of the stop this run continues from is no longer true; left in place, a crash of
  // the resumed run would read as another stop (experiment/run_folder.h).
  if (resume_from_ && fs::exists(files_.result) &&
      read_json_file(files_.result).value("status", std::string()) == "interrupted")
    fs::remove(files_.result);
  write_json_file_atomic(files_.config, resolved_);
}

// The seeded model (init_from on a fresh run), its optimiser, schedule and train step, and the
// state: fresh, or the checkpoint's weights, optimiser state and progress.
void TrainRun::build_model_and_state() {
  torch::manual_seed(cfg_.seed);
  ImageClassifier model = build_run_model(cfg_);
  on_main("init_from", [&] {
    if (!cfg_.init_from.empty() && !resume_from_)
      init_report_ = init_weights_from(*model, cfg_.init_from, transfer_options(cfg_));
  });
  objective_.emplace(cfg_.train, data_.mean, data_.std, device_);
  training_ = set_up_training(model, cfg_.train, device_, *objective_);
  if (device_.is_cuda() && cfg_.train.fast_path) eval_graph_ = std::make_unique<EvalGraph>();
  schedule_.emplace(cfg_.train, steps_per_epoch_);

  state_.config = resolved_;
  on_main("resume", [&] {
    if (!resume_from_) return;
    load_module_state(*training_.model, resume_from_->model, files_.last);
    training_.optimizer->load_state(resume_from_->optimizer);
    state_ = *resume_from_;
    state_.config = resolved_;
  });
  if (dp_) share_state_from_main();
  // Drops the records of an epoch that was cut off.
  on_main("metrics", [&] { write_metrics(files_.metrics, state_.history); });
}
// The data on the device, the progress output and result.json's fixed fields.
void TrainRun::prepare_data_and_result() {
  train_set_ = DeviceDataset(data_.train, device_);
  val_set_ = DeviceDataset(rank_share(data_.val), device_);
  test_set_ = DeviceDataset(rank_share(data_.test), device_);
  normalize_ = Normalizer(data_.mean, data_.std, device_);
  const int64_t params_count = count_parameters(*training_.model);
  progress_.emplace(cfg_.train.epochs, steps_per_epoch_, cfg_.train.log_every, opt_.quiet || !main_);
  if (data_.streamed) prepare_streaming();
  if (resume_from_ && state_.epoch_position.is_object())
    progress_->message(fmt::format("resuming {} in epoch {} at step {}", files_.dir.string(), state_.epochs_done + 1,
                                   state_.epoch_position.at("step").get<int64_t>() + 1));
  else if (resume_from_)
    progress_->message(fmt::format("resuming {} after epoch {}", files_.dir.string(), state_.epochs_done));
  if (init_report_) progress_->message("init_from " + init_report_->summary());

  result_ = {{"status", "running"}, {"parameters", params_count}, {"device", dev_.str()},
             {"cpu_threads", cpu_threads_}, {"git_commit", git_commit()},
             {"torch_version", torch_version()}, {"train_images", data_.train_count()},
             {"val_images", data_.val_count()}, {"test_images", data_.test_count()},
             {"streamed", data_.streamed != nullptr},
             {"world_size", dp_ ? dp_->world_size() : 1}, {"config", resolved_}};
  // What init_from did (resized position embeddings, a re-initialised head). A resumed run took
  // its weights from its own checkpoint; the report of its first start is in that start's log.
  if (dp_) result_["gradient_sync"] = opt_.dist.gradient_sync;  // the engine (data_parallel.h)
  if (init_report_) result_["init_from"] = init_report_->to_json();
  else if (!cfg_.init_from.empty()) result_["init_from"] = Json{{"source", cfg_.init_from}, {"resumed", true}};
}

// One pass over the training set, or the rest of one that a stopped run began. Diverged when the
// loss stops being finite; Interrupted after the current step when a stop was asked for.
EpochStats TrainRun::train_epoch(int64_t epoch) {
  training_.model->train();
  EpochProgress p = begin_epoch(epoch);
  EpochBatches batches(train_set_, cfg_.train.batch_size, true, true, epoch_seed(cfg_.seed, 0, 3), epoch);
  const int64_t first_step = p.next_step;
  const auto stream = data_.streamed ? train_stream(epoch, first_step) : nullptr;  // this rank's share
  const auto epoch_start = Clock::now();
  EpochStats stats;
  for (int64_t i = first_step; i < steps_per_epoch_; ++i) {
    if (stop_asked(i)) {
      p.next_step = i;
      stop_inside_epoch(p, seconds_since(epoch_start));
    }
    Batch b = stream ? stream->next() : batches.batch(i);
    if (stream && dp_) b = in_global_batch(b);  // the draws of one process for these rows
    Mixed m = augment_batch(b, cfg_.data.augment, normalize_, data_.num_classes, p.rng);
    if (dp_) {  // this rank's share of the global batch, augmented as one process would
      const int64_t share = cfg_.train.batch_size / dp_->world_size(), start = dp_->rank() * share;
      m.images = m.images.narrow(0, start, share);
      if (m.targets.defined()) m.targets = m.targets.narrow(0, start, share);
      b.labels = b.labels.narrow(0, start, share);
    }
    stats.lr = (*schedule_)(state_.steps_done);
    const StepOutput out = training_.step->run(m.images, m.targets, stats.lr);
    ++state_.steps_done;
    p.loss_sum += out.loss;
    if (out.correct.defined()) {  // the objective scores itself (masked patches)
      p.correct += out.correct;
      p.scored += out.scored;
    } else if (out.logits.defined()) {
      p.correct += out.logits.argmax(1).eq(b.labels).sum();
      p.scored += b.labels.size(0);
    }
    report_step(epoch, i, first_step, out.loss, stats.lr, epoch_start, stream.get());
  }
  if (dp_) {  // the epoch's numbers over every rank: the mean of equal shares' means
    dp_->all_reduce_sum({p.loss_sum, p.correct, p.scored});
    p.loss_sum /= dp_->world_size();
  }
  stats.mean_loss = p.loss_sum.item<double>() / double(steps_per_epoch_);
  if (!std::isfinite(stats.mean_loss))
    throw Diverged(fmt::format("mean training loss {} in epoch {}", stats.mean_loss, epoch + 1));
  const double seconds_now = seconds_since(epoch_start);
  stats.seconds = p.seconds_before + seconds_now;
  stats.images = steps_per_epoch_ * cfg_.train.batch_size;
  stats.train_accuracy = objective_->has_accuracy()
                             ? double(p.correct.item<int64_t>()) / double(std::max<int64_t>(p.scored.item<int64_t>(), 1))
                             : std::numeric_limits<double>::quiet_NaN();
  if (stream) stats.data_wait_seconds = stream->waited_seconds();
  images_trained_ += (steps_per_epoch_ - first_step) * cfg_.train.batch_size;
  train_seconds_now_ += seconds_now;
  state_.train_seconds += stats.seconds;
  return stats;
}

// The NaN check and the progress line, where they are due (a check syncs the device).
void TrainRun::report_step(int64_t epoch, int64_t i, int64_t first_step, const torch::Tensor& loss,
                           double lr, Clock::time_point epoch_start, const BatchStream* stream) {
  const int64_t check_every = dev_.cuda ? 50 : 1;
  if (!((i + 1) % check_every == 0 || i + 1 == steps_per_epoch_ || progress_->live() ||
        cfg_.train.log_every > 0))
    return;
  const double value = loss.item<double>();
  // Data-parallel ranks see different shares: the epoch's reduced loss decides for all of them.
  if (!std::isfinite(value) && !dp_)
    throw Diverged(fmt::format("loss became {} at epoch {} step {}", value, epoch + 1, i + 1));
  const double elapsed = seconds_since(epoch_start);
  const double ips = double((i + 1 - first_step) * cfg_.train.batch_size) / std::max(elapsed, 1e-9);
  const double remaining_steps =
      double(steps_per_epoch_ - i - 1) + double(cfg_.train.epochs - epoch - 1) * steps_per_epoch_;
  // A streamed folder: whether decoding keeps up (no batch ready means the step waited for it).
  const std::string data = stream ? fmt::format(" | decoding {:.0f} img/s, {} batches ready",
                                                 stream->images_per_second(), stream->queued())
                                   : "";
  progress_->step(int(epoch), i, value, lr, ips, remaining_steps * cfg_.train.batch_size / ips, data);
}

// The epoch's line of metrics.jsonl.
Json TrainRun::epoch_record(int64_t epoch, const EpochStats& stats, const EvalResult& val) const {
  // The masked-patch objective's numbers are named as such: its accuracy is over corrupted
  // patches' colour classes, not images' labels (and absent for the L2 targets).
  const std::string kind = objective_->supervised() ? "" : "masked_";
  const auto number = [](double x) { return std::isnan(x) ? Json() : Json(x); };
  Json record = {{"epoch", epoch + 1},
                 {"step", state_.steps_done},
                 {"lr", stats.lr},
                 {"train_loss", stats.mean_loss},
                 {"train_" + kind + "accuracy", number(stats.train_accuracy)},
                 {"epoch_seconds", stats.seconds},
                 {"images_per_second", double(stats.images) / stats.seconds}};
  // Streamed: how long the steps waited for the decoding threads (the part of the epoch this
  // process ran; rank 0's under torchrun). Near 0: the data kept up; else the step was starved.
  if (!std::isnan(stats.data_wait_seconds)) record["data_wait_seconds"] = stats.data_wait_seconds;
  if (val.count > 0) {
    record["val_" + kind + "loss"] = val.loss;
    record["val_" + kind + "accuracy"] = number(val.accuracy);
  }
  return record;
}

// The validation set's loss and accuracy under the run's objective; the masked-patch corruption
// is drawn from the same seed every epoch.
EvalResult TrainRun::validate() {
  const uint64_t seed = epoch_seed(cfg_.seed, 0, 4);
  if (data_.streamed) return score_streamed(data_.streamed->val, seed);
  if (objective_->supervised())
    return reduced(evaluate(*training_.model, val_set_, normalize_, cfg_.train.eval_batch_size, bf16_,
                             eval_graph_.get()));
  return evaluate_masked_patches(*training_.model, val_set_, normalize_, *objective_,
                                 cfg_.train.eval_batch_size, seed);
}

// Every rank scores the whole test set here (data-parallel ranks hold a share in test_set_; a
// streamed one decodes it all, and only rank 0 counts bad files).
FewShotResult TrainRun::fewshot() {
  if (data_.streamed)
    return fewshot_evaluate_streamed(*training_.model, data_.streamed->train, data_.streamed->test,
                                     decode_options(false), device_, normalize_, fewshot_options(),
                                     dp_ && !dp_->is_main() ? nullptr : bad_images_.get());
  const DeviceDataset test = dp_ ? DeviceDataset(data_.test, device_) : test_set_;
  return fewshot_evaluate(*training_.model, train_set_, test, normalize_, fewshot_options());
}

FewShotOptions TrainRun::fewshot_options() const {
  FewShotOptions few;
  few.shots = cfg_.train.fewshot.shots;
  few.seeds = cfg_.train.fewshot.seeds;
  few.batch_size = cfg_.train.eval_batch_size;
  few.bf16 = bf16_;
  few.source = (source_.empty() ? "" : source_ + ": ") + "train.fewshot.shots";
  return few;
}

// The live line after an epoch.
std::string TrainRun::epoch_line(int64_t epoch, const EpochStats& stats, const EvalResult& val) const {
  const char* what = objective_->supervised() ? "" : " masked";
  std::string line = fmt::format("epoch {}/{} loss {:.4f}", epoch + 1, cfg_.train.epochs, stats.mean_loss);
  if (!std::isnan(stats.train_accuracy))
    line += fmt::format(" train{} acc {:.2f}%", what, 100.0 * stats.train_accuracy);
  if (val.count > 0 && !objective_->supervised()) line += fmt::format(" val masked loss {:.4f}", val.loss);
  if (val.count > 0 && !std::isnan(val.accuracy))
    line += fmt::format(" val{} acc {:.2f}%", what, 100.0 * val.accuracy);
  return line + fmt::format(" {:.0f} img/s {}", double(stats.images) / stats.seconds,
                            format_duration(stats.seconds));
}

// The state after the epoch; last.pt and best.pt when a checkpoint is due; metrics.jsonl.
void TrainRun::save_epoch(int64_t epoch, const Json& record, const EvalResult& val) {
  check_ranks_agree(epoch);
  state_.epochs_done = epoch + 1;
  state_.history.push_back(record);
  on_main(fmt::format("epoch {}", epoch + 1), [&] { write_epoch_files(epoch, val); });
}

// The model's and optimizer's tensors into state_ (rank 0, before a checkpoint).
void TrainRun::capture_state() {
  state_.model = module_state(*training_.model);
  state_.optimizer = training_.optimizer->state();
}

// checkpoints/last.pt from state_, after best.pt when one is due: state_ itself when it is the
// best, else a best state waiting in host memory. best.pt goes first, so a resume from last.pt
// never sees a best.pt newer than itself.
void TrainRun::write_checkpoints(bool best_is_current) {
  if (best_is_current) save_checkpoint(files_.best, state_);
  else if (pending_best_) save_checkpoint(files_.best, *pending_best_);
  pending_best_.reset();
  save_checkpoint(files_.last, state_);
}

// Rank 0's part of save_epoch.
void TrainRun::write_epoch_files(int64_t epoch, const EvalResult& val) {
  capture_state();
  const bool write_now =
      (epoch + 1) % cfg_.train.checkpoint_every == 0 || epoch + 1 == cfg_.train.epochs;
  if (val.count > 0 && val.accuracy > state_.best_val_accuracy) {
    state_.best_val_accuracy = val.accuracy;
    state_.best_epoch = epoch + 1;
    // Between checkpoint epochs the best state waits in host memory.
    if (!write_now) pending_best_ = host_copy(state_);
  }
  if (write_now) write_checkpoints(state_.best_epoch == epoch + 1);
  write_metrics(files_.metrics, state_.history);
}

// After the last epoch: best.pt when no epoch was validated as best, the test set's numbers under
// the objective, and the few-shot linear evaluation when the run asks for it.
void TrainRun::finish() {
  on_main("best", [&] {
    if (state_.best_epoch < 0) save_checkpoint(files_.best, state_);  // best = last
  });
  const uint64_t seed = epoch_seed(cfg_.seed, 0, 5);
  if (objective_->supervised()) {
    const EvalResult test =
        data_.streamed ? score_streamed(data_.streamed->test, seed)
                       : reduced(evaluate(*training_.model, test_set_, normalize_,
                                         cfg_.train.eval_batch_size, bf16_, eval_graph_.get()));
    result_["test_accuracy"] = test.accuracy;
    result_["test_loss"] = test.loss;
  } else {
    const EvalResult test =
        data_.streamed ? score_streamed(data_.streamed->test, seed)
                       : evaluate_masked_patches(*training_.model, test_set_, normalize_, *objective_,
                                                 cfg_.train.eval_batch_size, seed);
    result_["test_masked_loss"] = test.loss;
    result_["test_masked_accuracy"] = std::isnan(test.accuracy) ? Json() : Json(test.accuracy);
  }
  if (!cfg_.train.fewshot.shots.empty()) {
    const FewShotResult r = fewshot();
    result_["fewshot"] = r.to_json();
    progress_->message("few-shot " + r.summary());
  }
  if (bad_images_) {  // each rank decodes its own files: summed over the ranks
    auto count = torch::tensor({double(bad_images_->count())}, torch::kDouble);
    if (dp_) dp_->all_reduce_sum({count});
    result_["bad_images"] = static_cast<int64_t>(count.item<double>());
  }
  result_["status"] = "completed";
}

Json TrainRun::run() {
  try {
    for (int64_t epoch = state_.epochs_done; epoch < cfg_.train.epochs; ++epoch) {
      const EpochStats stats = train_epoch(epoch);
      const EvalResult val = validate();
      save_epoch(epoch, epoch_record(epoch, stats, val), val);
      progress_->epoch_done(epoch_line(epoch, stats, val));
    }
    finish();
  } catch (const Interrupted& e) {
    result_["status"] = "interrupted";
    result_["stopped_by"] = e.signal == SIGINT ? "SIGINT" : "SIGTERM";
    result_["error"] = e.what();
  } catch (const Diverged& e) {
    if (pending_best_ && main_) save_checkpoint(files_.best, *pending_best_);  // the weights before it diverged
    result_["status"] = "diverged";
    result_["error"] = e.what();
  } catch (const UserError&) {
    throw;
  } catch (const c10::Error& e) {
    result_["status"] = "failed";
    result_["error"] = e.what_without_backtrace();
  } catch (const std::exception& e) {
    result_["status"] = "failed";
    result_["error"] = e.what();
  }
  // Whether the step replayed as one captured graph (recorded here: data-parallel runs drop it below).
  result_["cuda_graph"] = training_.step && training_.step->graphed();
  if (dp_) {
    // NCCL's shutdown waits until the CUDA graph that captured its collectives is released, so
    // the step and the gradient buckets go first. Only rank 0's file writing is left.
    grad_sync_.reset();
    training_.step.reset();
    dp_->finish(result_["status"] != "failed");
  }
  return write_result();
}

// result.json: the run's outcome and totals, and the closing line.
Json TrainRun::write_result() {
  result_["epochs_completed"] = state_.epochs_done;
  result_["steps"] = state_.steps_done;
  result_["best_val_accuracy"] = state_.best_val_accuracy >= 0 ? Json(state_.best_val_accuracy) : Json();
  result_["best_epoch"] = state_.best_epoch >= 0 ? Json(state_.best_epoch) : Json();
  result_["train_seconds"] = state_.train_seconds;
  result_["images_per_second"] =
      train_seconds_now_ > 0 ? double(images_trained_) / train_seconds_now_ : 0.0;
  if (!main_) return result_;  // rank 0 writes result.json
  write_json_file_atomic(files_.result, result_);
  std::string outcome;
  if (result_.contains("test_accuracy"))
    outcome = fmt::format(", test accuracy {:.2f}%", 100.0 * result_["test_accuracy"].get<double>());
  else if (result_.contains("test_masked_loss"))
    outcome = fmt::format(", test masked-patch loss {:.4f}{}", result_["test_masked_loss"].get<double>(),
                          result_["test_masked_accuracy"].is_number()
                              ? fmt::format(", accuracy {:.2f}%", 100.0 * result_["test_masked_accuracy"].get<double>())
                              : "");
  progress_->message(fmt::format("{}: {}{}", files_.dir.string(), result_["status"].get<std::string>(), outcome));
  return result_;
}

}  // namespace training

Json train_run(const RunConfig& cfg, const TrainOptions& opt) {
  training::TrainRun training(cfg, opt);
  return training.run();
}

}  // namespace vitlab
