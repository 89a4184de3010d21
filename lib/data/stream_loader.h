// Batches of a streamed image folder, decoded by a pool of threads ahead of the training step:
// the threads share out each batch's images (decode, crop, resize, flip) in chunks, oldest batch
// first, at most `queue_batches` batches ahead of the consumer; on CUDA the threads write into
// pinned buffers that the consumer copies from without holding up the host.
//
// With data.decoder "nvjpeg" (StreamOptions::nvjpeg) the threads read each file and draw its crop
// as before, but leave the JPEGs that the device's engines take (nvjpeg_decoder.h) undecoded; one
// more thread then finishes each batch on the device: its pinned rows copied over, those JPEGs
// decoded and cropped there, and the files nvJPEG refuses decoded on the CPU.
//
// Deterministic whatever the thread timing: slot s of the plan is file order[s], augmented with
// draws seeded by streams[s] (its position in the epoch's global order), so a run resumed at any
// batch and a data-parallel rank's share see the same pixels as one uninterrupted process.
#pragma once
#include <torch/torch.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/rand_augment_config.h"
#include "core/cuda_util.h"
#include "data/batcher.h"
#include "data/crop_transforms.h"
#include "data/file_listing.h"
#include "data/nvjpeg_decoder.h"

namespace vitlab {

struct StreamOptions {
  int64_t image_size = 224;  // output side
  bool random_crop = true;   // RandomResizedCrop (training); false: the eval crop
  bool flip = true;          // horizontal flip with probability 1/2 (with random_crop)
  RandomResizedCropParams crop;
  bool rand_augment = false;  // timm's RandAugment after the training crop
  RandAugmentConfig rand_augment_config;
  double crop_pct = 0.875;      // the eval crop's (timm's default)
  int threads = 0;              // decoding threads; 0: this process's share of the cores
  int processes_sharing_cores = 1;  // data-parallel ranks on this machine (LOCAL_WORLD_SIZE)
  int queue_batches = 0;        // batches made ahead; 0: half the threads, at least 4
  bool skip_bad_images = true;  // data.on_bad_image: "skip" (the next file stands in) or "error"
  bool nvjpeg = false;  // data.decoder "nvjpeg": JPEGs decoded on the (CUDA) device; no RandAugment

  // `threads`, or the cores this process may use divided among the processes sharing them.
  int thread_count() const;
};

// The files that failed to decode, each reported once through `warn` (path and reason).
class BadImageLog {
 public:
  explicit BadImageLog(std::function<void(const std::string&)> warn = {})
      : warn_(std::move(warn)) {}
  void add(const std::string& file, const std::string& reason);  // by path: any listing
  int64_t count() const;

 private:
  mutable std::mutex mutex_;
  std::set<std::string> files_;
  std::function<void(const std::string&)> warn_;
};

// Which file fills each slot and which draw stream augments it.
struct StreamPlan {
  std::vector<int64_t> files;     // file index per slot
  std::vector<uint64_t> streams;  // augmentation stream per slot
};
// Slots 0..n-1 of an epoch's `order` (file indices), each slot's stream its position.
StreamPlan whole_plan(const std::vector<int64_t>& order);
// Files first..last-1 of the listing in order, each slot's stream its file (evaluation parts).
StreamPlan listing_plan(int64_t first, int64_t last);
// A data-parallel rank's share: of every global batch of `global_batch` slots, the rank's
// global_batch / world consecutive ones (as the in-memory path's narrow), streams kept global.
StreamPlan rank_plan(const std::vector<int64_t>& order, int64_t global_batch, int rank, int world);

class BatchStream {
 public:
  // Makes batches first_batch, first_batch + 1, ... of `plan` (batch_size slots each; a short
  // last batch unless drop_last), augmented with seed `seed`, on `device`.
  BatchStream(const FileListing& files, StreamPlan plan, int64_t batch_size, bool drop_last,
              int64_t first_batch, uint64_t seed, const StreamOptions& options,
              torch::Device device, BadImageLog* bad);
  ~BatchStream();
  BatchStream(const BatchStream&) = delete;
  BatchStream& operator=(const BatchStream&) = delete;

  int64_t size() const { return num_batches_; }
  // The next batch, in order: images (B, 3, S, S) uint8 and labels on the device, indices the
  // files used (on the CPU). Rethrows a worker's error (a bad image under "error", an unreadable file).
  Batch next();
  int64_t queued() const;            // batches made and not yet taken
  double images_per_second() const;  // made since the start
  // Seconds next() spent waiting for a batch not yet made: the decoders falling behind the step.
  double waited_seconds() const;
  // Who decodes the JPEGs: "turbojpeg" or "stb_image" (the CPU), or "nvjpeg <backend>".
  std::string jpeg_decoder() const;

 private:
  // A row left to the device (nvjpeg): its file's bytes and the crop drawn for it.
  struct DeviceRow {
    int64_t file = -1;  // -1: the row was decoded on the CPU
    std::vector<uint8_t> bytes;
    CropBox box;
    bool flip = false;
  };
  struct Made {
    torch::Tensor images, labels, files;
    int buffer = -1;  // the pinned buffer images and labels lie in (CUDA), else -1
    std::vector<DeviceRow> device_rows;  // nvjpeg: one per row
    std::exception_ptr error;
  };
  // A batch being made: its chunks share out its rows among the threads.
  struct Pending {
    Made made;
    int64_t chunks = 0, chunks_left = 0;
  };
  void work();
  bool claim_chunk(int64_t* batch, int64_t* chunk);
  void release_copied(size_t keep);
  Made start_batch(int64_t batch, int buffer) const;
  void fill_rows(Made& made, int64_t batch, int64_t from, int64_t to) const;
  torch::Tensor decode_slot(int64_t slot, int64_t* file_used, DeviceRow* device_row) const;
  Made take(std::map<int64_t, Made>& from);
  // nvjpeg (stream_loader_device.cpp): the thread that finishes batches on the device, in order.
  void finish_on_device(int64_t first_batch);
  void finish_batch(int64_t batch, Made& made);

  const FileListing& files_;
  StreamPlan plan_;
  int64_t batch_size_, num_batches_, next_to_make_, next_to_take_;
  int64_t next_chunk_ = 0;    // of batch next_to_make_
  bool setting_up_ = false;   // a thread is setting up batch next_to_make_
  int threads_ = 1;
  uint64_t seed_;
  StreamOptions options_;
  torch::Device device_;
  BadImageLog* bad_;
  int depth_;
  std::chrono::steady_clock::time_point start_;
  int64_t images_made_ = 0;
  double waited_seconds_ = 0;
  bool stopping_ = false;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<int64_t, Pending> pending_;
  std::map<int64_t, Made> ready_;
  std::map<int64_t, Made> finished_;  // nvjpeg: on the device, for next()
  // CUDA: whole-batch pinned buffers (images, labels), allocated by the constructor on the
  // consumer's thread; the free ones by index; those whose copies to the device may still run,
  // oldest first (the consumer's alone).
  std::vector<torch::Tensor> pinned_images_, pinned_labels_;
  std::vector<int> free_buffers_;
  std::deque<std::pair<int, cuda::StreamMark>> copying_;
  std::vector<std::thread> workers_;
  std::unique_ptr<NvJpegDecoder> nvjpeg_;
  std::thread device_thread_;
};

}  // namespace vitlab
