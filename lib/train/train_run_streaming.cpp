// What a run adds for a streamed image folder (data/streamed_folder.h): the listings kept in the
// run folder, the decoding threads' batches of each epoch, the streamed test pass.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>

#include "config/json_reader.h"
#include "data/random.h"
#include "train/train_run.h"

namespace vitlab::training {

// What streaming does not do yet fails before anything is written.
void TrainRun::check_streamable() const {
  if (cfg_.train.objective != Objective::kSupervised)
    config_error(source_, "train.objective",
                 "the masked-patch objective is not supported with a streamed image folder yet "
                 "(data.streaming)");
  const auto& a = cfg_.data.augment;
  if (opt_.dist.distributed() && (a.mixup_alpha > 0 || a.cutmix_alpha > 0))
    config_error(
        source_, a.mixup_alpha > 0 ? "data.augment.mixup_alpha" : "data.augment.cutmix_alpha",
        "mixup and cutmix pair images across the ranks' shares, which streaming data-parallel "
        "ranks do not hold; not supported yet (one process can)");
  if (!cfg_.train.fewshot.shots.empty())
    config_error(
        source_, "train.fewshot.shots",
        "few-shot evaluation is not supported with a streamed image folder yet (data.streaming)");
}

// The listings into the run folder (a resumed run reads them back: the same files in the same
// order, whatever the folder holds by then); warnings about skipped folders and files.
void TrainRun::prepare_streaming() {
  on_main("listings", [&] {
    // The training part last: a resumed run that finds it finds the others
    // (data/streamed_folder.h).
    const auto& f = *data_.streamed;
    for (const auto& [l, part] : {std::pair<const FileListing*, const char*>{&f.val, "val"},
                                  {&f.test, "test"}, {&f.train, "train"}}) {
      const std::string path = listing_cache_path(files_.dir.string(), part);
      if (l->size() > 0 && !std::filesystem::exists(path)) save_listing(*l, path);
    }
  });
  for (const auto& w : data_.streamed->warnings) data_warning(w);
  bad_images_ =
      std::make_unique<BadImageLog>([this](const std::string& w) { data_warning("skipped " + w); });
  progress_->message(fmt::format(
      "streaming {}: {} training, {} validation and {} test images, decoded on the fly",
      cfg_.data.path, data_.train_count(), data_.val_count(), data_.test_count()));
}

// A data problem the run goes on past: on stderr even with --quiet, and appended to the run
// folder's warnings.log by every rank (each decodes its own share). Called from the decoding
// threads too.
void TrainRun::data_warning(const std::string& text) {
  std::lock_guard<std::mutex> lock(warn_mutex_);
  const std::string line = dp_ ? fmt::format("rank {}: {}", dp_->rank(), text) : text;
  std::fprintf(stderr, "vitlab train: warning: %s\n", line.c_str());
  std::ofstream((files_.dir / "warnings.log").string(), std::ios::app) << line << '\n';
}

// Epoch `epoch`'s batches from `first_step` on: the in-memory path's order (the same seed and
// permutation), each rank decoding only its share of every global batch.
std::unique_ptr<BatchStream> TrainRun::train_stream(int64_t epoch, int64_t first_step) {
  const FileListing& files = data_.streamed->train;
  const auto order = epoch_permutation_indices(epoch_seed(cfg_.seed, 0, 3), epoch, files.size());
  const int64_t batch = cfg_.train.batch_size;
  StreamPlan plan =
      dp_ ? rank_plan(order, batch, dp_->rank(), dp_->world_size()) : whole_plan(order);
  const uint64_t seed = mix_seed(epoch_seed(cfg_.seed, 0, 6), static_cast<uint64_t>(epoch));
  return std::make_unique<BatchStream>(files, std::move(plan),
                                       dp_ ? batch / dp_->world_size() : batch,
                                       /*drop_last=*/true, first_step, seed,
                                       decode_options(true), device_, bad_images_.get());
}

// The ranks on one machine share its cores (data.decode_threads 0).
StreamOptions TrainRun::decode_options(bool training) const {
  StreamOptions o = stream_options(cfg_.data, training);
  o.processes_sharing_cores = dp_ ? dp_->local_world_size() : 1;
  return o;
}

// A rank's streamed share at its rows of a global batch of zeros: the device-side augmentation
// (crop padding, flip, erasing) then draws for those rows what one process draws, as the
// in-memory path's ranks do by augmenting the whole batch.
Batch TrainRun::in_global_batch(const Batch& share) const {
  const int64_t rows = share.images.size(0), start = dp_->rank() * rows;
  auto shape = share.images.sizes().vec();
  shape[0] = cfg_.train.batch_size;
  Batch global;
  global.images = torch::zeros(shape, share.images.options());  // (B, C, H, W)
  global.images.narrow(0, start, rows).copy_(share.images);
  global.labels = torch::zeros({cfg_.train.batch_size}, share.labels.options());
  global.labels.narrow(0, start, rows).copy_(share.labels);
  global.indices = share.indices;
  return global;
}

// A part (the test split, or the validation part held out of train) through the evaluation crop;
// data-parallel ranks take contiguous shares, whose sums reduced() adds up.
EvalResult TrainRun::evaluate_streamed(const FileListing& files) {
  return vitlab::evaluate_streamed(*training_.model, files, decode_options(false),
                                   cfg_.train.eval_batch_size, normalize_, bf16_, device_,
                                   bad_images_.get(), dp_ ? dp_->rank() : 0,
                                   dp_ ? dp_->world_size() : 1);
}

}  // namespace vitlab::training
