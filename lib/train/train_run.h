// The training run behind train_run() (trainer.h), shared by the files that implement it:
// trainer.cpp (one process) and train_run_parallel.cpp (what data-parallel ranks add).
// Not an interface: nothing outside lib/train includes it.
#pragma once
#include <chrono>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "data/augment.h"
#include "data/batcher.h"
#include "data/load_data.h"
#include "data/stream_loader.h"
#include "train/checkpoint.h"
#include "train/data_parallel.h"
#include "train/evaluate.h"
#include "train/fewshot.h"
#include "train/objective.h"
#include "train/progress.h"
#include "train/schedule.h"
#include "train/train_setup.h"
#include "train/trainer.h"
#include "train/weights_init.h"

namespace vitlab::training {

using Clock = std::chrono::steady_clock;

struct Diverged : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A run stopped by SIGINT or SIGTERM after its current step (core/interrupt.h), its checkpoint
// written.
struct Interrupted : std::runtime_error {
  Interrupted(int signal, const std::string& what) : std::runtime_error(what), signal(signal) {}
  int signal;
};

// An epoch under way: its random streams and what it has summed. A run stopped inside an epoch
// keeps them in its checkpoint (Checkpoint::epoch_position and rng), and the resumed run goes on
// from the next step exactly as an uninterrupted run would (train_interrupt.cpp).
struct EpochProgress {
  int64_t epoch = 0;
  int64_t next_step = 0;      // the first step not yet trained
  AugmentRng rng;             // augmentation draws: one stream, the same on every rank
  torch::Tensor loss_sum, correct, scored;  // this rank's sums so far, on the device
  double seconds_before = 0;  // what the epoch took in the process that was stopped
};

// The files of a run folder (trainer.h describes them).
struct RunFiles {
  std::filesystem::path dir;
  std::string config, result, metrics, last, best;
};

// What one epoch of training measured.
struct EpochStats {
  double mean_loss = 0;
  double train_accuracy = 0;
  double seconds = 0;
  double lr = 0;  // of the epoch's last step
  int64_t images = 0;
  // Streamed data: the seconds this process's steps waited for decoded batches (NaN otherwise).
  double data_wait_seconds = std::numeric_limits<double>::quiet_NaN();
};

// One run in named steps. The constructor is the set-up: every input is checked before anything
// is written, then the run folder, the model with its optimiser and train step, and the state
// (fresh or resumed). run() trains each epoch (train_epoch, evaluation, save_epoch), then
// evaluates on the test set and writes result.json. Under torchrun each rank runs one, joined by
// dp_: rank 0 (main_) writes the files, and every rank trains its share of each batch.
class TrainRun {
 public:
  TrainRun(const RunConfig& cfg, const TrainOptions& opt);
  Json run();

 private:
  void check_input();
  void join_group();
  void on_main(const std::string& what, const std::function<void()>& work);
  void prepare_folder();
  void prepare_own_folder();
  void build_model_and_state();
  void use_local_gpu();
  void share_state_from_main();
  void prepare_data_and_result();
  Dataset rank_share(const Dataset& data) const;
  EvalResult reduced(EvalResult r);

  EpochStats train_epoch(int64_t epoch);
  EpochProgress begin_epoch(int64_t epoch);
  bool stop_asked(int64_t step);
  [[noreturn]] void stop_inside_epoch(const EpochProgress& p, double seconds);
  Json gather_epoch_position(const EpochProgress& p, double seconds);
  void report_step(int64_t epoch, int64_t i, int64_t first_step, const torch::Tensor& loss, double lr,
                   Clock::time_point epoch_start, const BatchStream* stream);
  EvalResult validate();
  // Streamed image folders (train_run_streaming.cpp).
  void prepare_streaming();
  void data_warning(const std::string& text);
  std::unique_ptr<BatchStream> train_stream(int64_t epoch, int64_t first_step);
  StreamOptions decode_options(bool training) const;
  EvalResult score_streamed(const FileListing& files, uint64_t seed);
  Batch in_global_batch(const Batch& share);
  FewShotResult fewshot();
  FewShotOptions fewshot_options() const;
  Json epoch_record(int64_t epoch, const EpochStats& stats, const EvalResult& val) const;
  std::string epoch_line(int64_t epoch, const EpochStats& stats, const EvalResult& val) const;
  void check_ranks_agree(int64_t epoch);
  void save_epoch(int64_t epoch, const Json& record, const EvalResult& val);
  void write_epoch_files(int64_t epoch, const EvalResult& val);
  void capture_state();
  void write_checkpoints(bool best_is_current);
  void finish();
  Json write_result();

  const RunConfig& cfg_;
  const TrainOptions& opt_;
  const std::string& source_;
  DeviceChoice dev_;
  torch::Device device_{torch::kCPU};
  // Data-parallel (train/data_parallel.h): the group, and whether this process writes the files.
  // Declared before the train step so that it is destroyed after it: NCCL's shutdown waits until
  // the CUDA graph that captured its collectives is released.
  std::unique_ptr<DataParallel> dp_;
  bool bf16_ = false;
  int cpu_threads_ = 0;
  DataBundle data_;
  int64_t steps_per_epoch_ = 0;
  RunFiles files_;
  Json resolved_;
  std::optional<Checkpoint> resume_from_;
  std::optional<WeightsImportReport> init_report_;
  TrainingSetup training_;
  std::optional<LrScheduleFn> schedule_;
  std::optional<TrainObjective> objective_;
  Checkpoint state_;
  DeviceDataset train_set_, val_set_, test_set_;
  // The fast path's captured evaluation forward (train.fast_path on CUDA), else null.
  std::unique_ptr<EvalGraph> eval_graph_;
  Normalizer normalize_;
  std::optional<Progress> progress_;
  Json result_;
  int64_t images_trained_ = 0;
  double train_seconds_now_ = 0;
  std::optional<Checkpoint> pending_best_;  // a best state not yet written (checkpoint_every > 1)
  std::unique_ptr<GradientSync> grad_sync_;  // data-parallel gradient averaging (dp_ above)
  bool main_ = true;
  int stop_signal_ = 0;  // the signal that stops this run (any rank's, data-parallel)
  std::unique_ptr<BadImageLog> bad_images_;  // a streamed folder's files that failed to decode
  std::mutex warn_mutex_;                    // their warnings come from the decoding threads
};

}  // namespace vitlab::training
