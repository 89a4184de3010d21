#include "data/stream_loader.h"

#include <algorithm>

#include "core/cpu_runtime.h"
#include "core/error.h"
#include "data/file_bytes.h"
#include "data/image_decode.h"
#include "data/rand_augment.h"
#include "data/random.h"

namespace vitlab {
namespace {

// A bad file's slot is filled by the files after it in the listing: at most this many tries.
constexpr int kStandIns = 10;
// Separates the crop draws from other users of the run seed.
constexpr uint64_t kStreamCropStream = 0x57c0b;
// Pinned buffers whose copies to the device may run at once; next() waits for the oldest beyond.
constexpr size_t kCopiesInFlight = 3;

}  // namespace

int StreamOptions::thread_count() const {
  if (threads > 0) return threads;
  return std::max(1, available_cores() / std::max(1, processes_sharing_cores));
}

void BadImageLog::add(const std::string& file, const std::string& reason) {
  std::function<void(const std::string&)> warn;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!files_.insert(file).second) return;
    warn = warn_;
  }
  if (warn) warn(reason);
}

int64_t BadImageLog::count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(files_.size());
}

StreamPlan whole_plan(const std::vector<int64_t>& order) {
  StreamPlan p;
  p.files = order;
  for (size_t s = 0; s < order.size(); ++s) p.streams.push_back(s);
  return p;
}

StreamPlan listing_plan(int64_t first, int64_t last) {
  StreamPlan p;
  for (int64_t i = first; i < last; ++i) {
    p.files.push_back(i);
    p.streams.push_back(static_cast<uint64_t>(i));
  }
  return p;
}

StreamPlan rank_plan(const std::vector<int64_t>& order, int64_t global_batch, int rank, int world) {
  TORCH_CHECK(world > 0 && rank >= 0 && rank < world && global_batch % world == 0,
              "rank_plan: rank ", rank, " of ", world, ", global batch ", global_batch);
  const int64_t share = global_batch / world, n = static_cast<int64_t>(order.size());
  StreamPlan p;
  for (int64_t start = 0; start + global_batch <= n; start += global_batch)
    for (int64_t s = start + rank * share; s < start + (rank + 1) * share; ++s) {
      p.files.push_back(order[static_cast<size_t>(s)]);
      p.streams.push_back(static_cast<uint64_t>(s));
    }
  return p;
}

BatchStream::BatchStream(const FileListing& files, StreamPlan plan, int64_t batch_size,
                         bool drop_last, int64_t first_batch, uint64_t seed,
                         const StreamOptions& options, torch::Device device, BadImageLog* bad)
    : files_(files),
      plan_(std::move(plan)),
      batch_size_(batch_size),
      num_batches_(
          batches_per_epoch(static_cast<int64_t>(plan_.files.size()), batch_size, drop_last)),
      next_to_make_(first_batch),
      next_to_take_(first_batch),
      seed_(seed),
      options_(options),
      device_(device),
      bad_(bad) {
  TORCH_CHECK(plan_.files.size() == plan_.streams.size(), "BatchStream: plan sizes differ");
  TORCH_CHECK(first_batch >= 0 && first_batch <= num_batches_, "BatchStream: first batch ",
              first_batch, " of ", num_batches_);
  if (options_.nvjpeg) {
    if (options_.rand_augment)
      throw UserError("data.decoder \"nvjpeg\" does not run data.augment.rand_augment");
    nvjpeg_ = std::make_unique<NvJpegDecoder>(device_);  // UserError: no nvJPEG, or no CUDA device
  }
  const int threads = options.thread_count();
  threads_ = threads;
  depth_ = options.queue_batches > 0 ? options.queue_batches : std::max(4, threads / 2);
  if (device_.is_cuda()) {
    // Here, on the consumer's thread: allocating pinned memory queries CUDA events, which a CUDA
    // graph's capture in global mode forbids in any thread while it lasts. The decoding threads
    // then write into these buffers, making no CUDA call, and next() copies from them without
    // first copying each batch into pinned memory on the thread that runs the steps.
    const int64_t s = options.image_size;
    const auto pinned = torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(true);
    const int64_t count = std::min<int64_t>(depth_, num_batches_ - first_batch) + kCopiesInFlight;
    for (int i = 0; i < count; ++i) {
      pinned_images_.push_back(torch::empty({batch_size_, 3, s, s}, pinned));  // (B, 3, S, S)
      pinned_labels_.push_back(torch::empty({batch_size_}, pinned.dtype(torch::kInt64)));
      free_buffers_.push_back(i);
    }
  }
  start_ = std::chrono::steady_clock::now();
  if (num_batches_ == first_batch) return;
  for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { work(); });
  if (nvjpeg_) device_thread_ = std::thread([this, first_batch] { finish_on_device(first_batch); });
}

BatchStream::~BatchStream() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& w : workers_) w.join();
  if (device_thread_.joinable()) device_thread_.join();
}

void BatchStream::work() {
  // Each thread runs ATen on itself: measured on the GPU machine's 16 cores (README "Streamed
  // image folders"), ATen's resize opening a 16-thread team in each of 16 decoders cost more
  // than the team gave.
  use_one_compute_thread_here();
  int64_t batch = 0, chunk = 0;
  while (claim_chunk(&batch, &chunk)) {
    Pending* p;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      p = &pending_.at(batch);  // std::map: stable while the batch is pending
    }
    const int64_t rows = p->made.images.size(0);
    const int64_t from = chunk * rows / p->chunks, to = (chunk + 1) * rows / p->chunks;
    std::exception_ptr error;
    try {
      fill_rows(p->made, batch, from, to);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!nvjpeg_) images_made_ += to - from;  // else counted when finished on the device
      if (error && !p->made.error) p->made.error = error;
      if (--p->chunks_left == 0) {
        ready_.emplace(batch, std::move(p->made));
        pending_.erase(batch);
      }
    }
    changed_.notify_all();
  }
}

// The next chunk to decode, oldest batch first, once its batch may be made (at most depth_
// ahead of the consumer); false when the stream stops or every batch is claimed. A batch's
// first chunk sets the batch up, taking a pinned buffer on CUDA: at most depth_ batches are
// claimed and kCopiesInFlight copied at once, and there are that many buffers, so one is free
// or soon freed by next().
bool BatchStream::claim_chunk(int64_t* batch, int64_t* chunk) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] {
    return stopping_ || next_to_make_ >= num_batches_ ||
           (!setting_up_ && next_to_make_ < next_to_take_ + depth_);
  });
  if (stopping_ || next_to_make_ >= num_batches_) return false;
  const int64_t b = next_to_make_;
  if (next_chunk_ == 0) {
    setting_up_ = true;
    int buffer = -1;
    if (!pinned_images_.empty()) {
      changed_.wait(lock, [&] { return stopping_ || !free_buffers_.empty(); });
      if (stopping_) return false;
      buffer = free_buffers_.back();
      free_buffers_.pop_back();
    }
    Pending& p = pending_[b];
    p.made = start_batch(b, buffer);
    p.chunks = p.chunks_left = std::min<int64_t>(threads_, p.made.images.size(0));
    setting_up_ = false;
    changed_.notify_all();
  }
  *batch = b;
  *chunk = next_chunk_;
  if (++next_chunk_ == pending_.at(b).chunks) {
    next_chunk_ = 0;
    ++next_to_make_;
  }
  return true;
}

// Frees the buffers whose copies have finished, and waits for the oldest ones while more than
// `keep` may still run. CUDA event queries, on the consumer's thread between its steps.
void BatchStream::release_copied(size_t keep) {
  std::vector<int> done;
  while (!copying_.empty() && (copying_.size() > keep || copying_.front().second.reached())) {
    copying_.front().second.wait();
    done.push_back(copying_.front().first);
    copying_.pop_front();
  }
  if (done.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    free_buffers_.insert(free_buffers_.end(), done.begin(), done.end());
  }
  changed_.notify_all();
}

// The slot's image: its file decoded and augmented; a bad file under "skip" gives way to the
// next files of the listing. `file_used` receives the file that filled the slot. With a
// `device_row`, a JPEG that the device takes is left to it there (bytes and crop), undecoded, and
// the tensor returned is undefined.
torch::Tensor BatchStream::decode_slot(int64_t slot, int64_t* file_used,
                                       DeviceRow* device_row) const {
  const int64_t n = files_.size(), s = options_.image_size;
  int64_t file = plan_.files[static_cast<size_t>(slot)];
  for (int attempt = 0;; ++attempt, file = (file + 1) % n) {
    const std::string path = files_.path(file);
    try {
      std::vector<uint8_t> bytes = files_.read(file, kMaxImageFileBytes);
      std::mt19937_64 rng(
          mix_seed(mix_seed(seed_, kStreamCropStream), plan_.streams[static_cast<size_t>(slot)]));
      // The crop is drawn in the file's pixels first, so that the DCT shrinks the image only as
      // far as keeps at least s pixels across the crop.
      const auto [file_h, file_w] = image_size_of(bytes, path);
      const CropBox box = options_.random_crop
                              ? random_resized_crop_box(file_h, file_w, options_.crop, rng)
                              : center_crop_box(file_h, file_w, s, options_.crop_pct);
      const bool flip = options_.random_crop && options_.flip && uniform01(rng) < 0.5;
      *file_used = file;
      if (device_row && nvjpeg_may_take(bytes)) {
        *device_row = {file, std::move(bytes), box, flip};
        return {};
      }
      const int64_t crop_side = std::min(box.height, box.width);
      const DecodedImage image = decode_rgb_box(
          bytes, path, box, (std::min(file_h, file_w) * s + crop_side - 1) / crop_side);
      auto chw = crop_resize(image.hwc, image.box, s, s, flip);  // (3, s, s)
      if (!options_.rand_augment) return chw;
      const auto hwc =
          rand_augment(chw.permute({1, 2, 0}).contiguous(), options_.rand_augment_config, rng);
      return hwc.permute({2, 0, 1}).contiguous();
    } catch (const DataError& e) {
      if (!options_.skip_bad_images)
        throw DataError(std::string(e.what()) +
                        " (data.on_bad_image is \"error\"; \"skip\" skips it)");
      if (bad_) bad_->add(path, e.what());
      if (attempt + 1 >= kStandIns)
        fail<DataError>("{}: this file and the {} after it in the listing could not be decoded",
                        path, kStandIns - 1);
    }
  }
}

// Batch `batch`'s tensors, in pinned buffer `buffer` or (-1) new ones; its rows not yet made.
BatchStream::Made BatchStream::start_batch(int64_t batch, int buffer) const {
  const int64_t first = batch * batch_size_;
  const int64_t count =
      std::min<int64_t>(batch_size_, static_cast<int64_t>(plan_.files.size()) - first);
  const int64_t s = options_.image_size;
  Made m;
  m.buffer = buffer;
  if (buffer >= 0) {
    m.images = pinned_images_[static_cast<size_t>(buffer)].narrow(0, 0, count);
    m.labels = pinned_labels_[static_cast<size_t>(buffer)].narrow(0, 0, count);
  } else {
    m.images = torch::empty({count, 3, s, s}, torch::kUInt8);  // (B, 3, S, S)
    m.labels = torch::empty({count}, torch::kInt64);
  }
  m.files = torch::empty({count}, torch::kInt64);
  if (nvjpeg_) m.device_rows.resize(static_cast<size_t>(count));
  return m;
}

// Rows [from, to) of the batch: other threads fill its other rows at the same time, so each
// row is written through its own view and pointers, never through the whole tensor.
void BatchStream::fill_rows(Made& made, int64_t batch, int64_t from, int64_t to) const {
  int64_t* labels = made.labels.data_ptr<int64_t>();
  int64_t* files = made.files.data_ptr<int64_t>();
  for (int64_t i = from; i < to; ++i) {
    int64_t file = 0;
    DeviceRow* device_row = nvjpeg_ ? &made.device_rows[static_cast<size_t>(i)] : nullptr;
    const auto image = decode_slot(batch * batch_size_ + i, &file, device_row);
    if (image.defined()) made.images[i].copy_(image);
    labels[i] = static_cast<int64_t>(files_.labels[static_cast<size_t>(file)]);
    files[i] = file;
  }
}

// Batch next_to_take_ out of `from` once it is there, timing the wait.
BatchStream::Made BatchStream::take(std::map<int64_t, Made>& from) {
  Made made;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    TORCH_CHECK(next_to_take_ < num_batches_, "BatchStream: all ", num_batches_, " batches taken");
    const auto asked = std::chrono::steady_clock::now();
    changed_.wait(lock, [&] { return from.count(next_to_take_) > 0; });
    waited_seconds_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count();
    auto it = from.find(next_to_take_);
    made = std::move(it->second);
    from.erase(it);
    ++next_to_take_;
  }
  changed_.notify_all();
  return made;
}

Batch BatchStream::next() {
  if (nvjpeg_) {  // finished on the device, the pinned buffer already free
    Made made = take(finished_);
    if (made.error) std::rethrow_exception(made.error);
    nvjpeg_->hand_over(made.images);
    nvjpeg_->hand_over(made.labels);
    return {made.images, made.labels, made.files};
  }
  if (!pinned_images_.empty()) release_copied(kCopiesInFlight - 1);
  Made made = take(ready_);
  if (made.error) {
    if (made.buffer >= 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      free_buffers_.push_back(made.buffer);
    }
    changed_.notify_all();
    std::rethrow_exception(made.error);
  }
  if (!device_.is_cuda()) return {made.images, made.labels, made.files};
  // From pinned memory the copies leave the host free; the file indices stay on the CPU.
  Batch b{made.images.to(device_, /*non_blocking=*/true),
          made.labels.to(device_, /*non_blocking=*/true), made.files};
  copying_.emplace_back(made.buffer, cuda::StreamMark(device_));
  return b;
}

int64_t BatchStream::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(ready_.size() + finished_.size());
}

double BatchStream::waited_seconds() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return waited_seconds_;
}

std::string BatchStream::jpeg_decoder() const {
  if (nvjpeg_) return "nvjpeg " + nvjpeg_->backend();
  return have_turbojpeg() ? "turbojpeg" : "stb_image";
}

double BatchStream::images_per_second() const {
  std::lock_guard<std::mutex> lock(mutex_);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return seconds > 0 ? double(images_made_) / seconds : 0.0;
}

}  // namespace vitlab
