// What a run adds for a streamed image folder (data/streamed_folder.h): the listings kept in the
// run folder, the decoding threads' batches of each epoch, the streamed test pass.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>

#include "data/random.h"
#include "train/objective.h"
#include "train/train_run.h"

namespace vitlab::training {

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
  const StreamOptions o = decode_options(true);
  progress_->message(fmt::format(
      "streaming {}: {} training, {} validation and {} test images, decoded on the fly ({} "
      "threads{})",
      cfg_.data.path, data_.train_count(), data_.val_count(), data_.test_count(), o.thread_count(),
      o.nvjpeg ? " reading, JPEGs decoded by nvJPEG on the device" : ""));
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
// in-memory path's ranks do by augmenting the whole batch. Mixup and cutmix pair each row with
// the batch's mirror row (timm's Mixup flips the batch), which another rank decoded: then the
// shares are summed over the ranks (each row is non-zero on one rank only, so the sum is exact),
// and every rank holds the whole global batch, as in memory.
Batch TrainRun::in_global_batch(const Batch& share) {
  const int64_t rows = share.images.size(0), start = dp_->rank() * rows;
  auto shape = share.images.sizes().vec();
  shape[0] = cfg_.train.batch_size;
  Batch global;
  global.images = torch::zeros(shape, share.images.options());  // (B, C, H, W)
  global.images.narrow(0, start, rows).copy_(share.images);
  global.labels = torch::zeros({cfg_.train.batch_size}, share.labels.options());
  global.labels.narrow(0, start, rows).copy_(share.labels);
  global.indices = share.indices;
  const auto& a = cfg_.data.augment;
  if (a.mixup_alpha > 0 || a.cutmix_alpha > 0) dp_->all_reduce_sum({global.images, global.labels});
  return global;
}

// A part (the test split, or the validation part held out of train) through the evaluation crop,
// scored under the run's objective. Supervised: data-parallel ranks take contiguous shares,
// whose sums reduced() adds up. Masked patches: every rank scores the whole part, as in memory
// (the corruption draws go per batch, from `seed`), and only rank 0 counts its bad files.
EvalResult TrainRun::score_streamed(const FileListing& files, uint64_t seed) {
  if (files.size() == 0) return {};
  if (objective_->supervised())
    return reduced(vitlab::evaluate_streamed(*training_.model, files, decode_options(false),
                                             cfg_.train.eval_batch_size, normalize_, bf16_,
                                             device_, bad_images_.get(), dp_ ? dp_->rank() : 0,
                                             dp_ ? dp_->world_size() : 1));
  return evaluate_masked_streamed(*training_.model, files, decode_options(false), normalize_,
                                  *objective_, cfg_.train.eval_batch_size, seed, device_,
                                  dp_ && !dp_->is_main() ? nullptr : bad_images_.get());
}

}  // namespace vitlab::training
