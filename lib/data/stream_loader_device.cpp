// BatchStream's last stage under data.decoder "nvjpeg": one thread takes the batches the decoding
// threads made, in order, and finishes each on the device (stream_loader.h). Its CUDA calls run
// beside the training step's, on the decoder's own stream, and wait while a graph is captured.
#include <exception>

#include "data/stream_loader.h"

namespace vitlab {

void BatchStream::finish_on_device(int64_t first_batch) {
  for (int64_t batch = first_batch; batch < num_batches_; ++batch) {
    Made made;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || ready_.count(batch) > 0; });
      if (stopping_) return;
      auto it = ready_.find(batch);
      made = std::move(it->second);
      ready_.erase(it);
    }
    const int64_t rows = made.images.size(0);
    if (!made.error) {
      try {
        finish_batch(batch, made);
      } catch (...) {
        made.error = std::current_exception();
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (made.buffer >= 0) free_buffers_.push_back(made.buffer);  // finish() waited for its copy
      made.buffer = -1;
      made.device_rows.clear();
      images_made_ += rows;
      finished_.emplace(batch, std::move(made));
    }
    changed_.notify_all();
  }
}

// The rows left to the device decoded there over the pinned rows; the files that nvJPEG refuses,
// or a batch it fails on, decoded on the CPU here as decode_slot would (bad files included).
void BatchStream::finish_batch(int64_t batch, Made& made) {
  std::vector<JpegForDevice> device;
  for (size_t i = 0; i < made.device_rows.size(); ++i) {
    const DeviceRow& r = made.device_rows[i];
    if (r.file >= 0) device.push_back({&r.bytes, r.box, r.flip, static_cast<int64_t>(i)});
  }
  int64_t* labels = made.labels.data_ptr<int64_t>();
  int64_t* files = made.files.data_ptr<int64_t>();
  const auto on_cpu = [&](const JpegForDevice& f) {
    int64_t file = 0;
    made.images[f.row].copy_(decode_slot(batch * batch_size_ + f.row, &file, nullptr));
    labels[f.row] = static_cast<int64_t>(files_.labels[static_cast<size_t>(file)]);
    files[f.row] = file;
  };
  const std::vector<size_t> refused = nvjpeg_->refused(device);
  if (!refused.empty()) {
    std::vector<JpegForDevice> taken;
    for (size_t i = 0, k = 0; i < device.size(); ++i) {
      if (k < refused.size() && refused[k] == i) {
        on_cpu(device[i]);
        ++k;
      } else {
        taken.push_back(device[i]);
      }
    }
    device.swap(taken);
  }
  torch::Tensor images, labels_on_device;
  if (!nvjpeg_->finish(made.images, made.labels, device, &images, &labels_on_device)) {
    for (const JpegForDevice& f : device) on_cpu(f);
    if (!nvjpeg_->finish(made.images, made.labels, {}, &images, &labels_on_device))
      throw std::runtime_error("BatchStream: copying a batch to the device failed");
  }
  made.images = images;
  made.labels = labels_on_device;
}

}  // namespace vitlab
