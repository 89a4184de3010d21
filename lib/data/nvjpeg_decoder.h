// data.decoder "nvjpeg": a streamed batch's JPEGs decoded on the CUDA device's JPEG engines
// through the CUDA toolkit's nvJPEG, and cropped there (data/device_crop.h).
//
// Measured on an H200 (README "Streamed image folders"): the hardware engines
// (NVJPEG_BACKEND_HARDWARE, on A100/H100/H200) decoded ~500x375 JPEGs at 20,400 img/s in
// batches of 120 while a compute-bound kernel beside them slowed by 0.6%; nvJPEG's CUDA decoder
// made 4,200 img/s and slowed it by 11%; 16 CPU threads with their crops, 4,600 img/s. The
// decoder takes the engines where the device has them, else nvJPEG's default backend. In
// training, nvjpegDecodeBatched returns only once the device's earlier work is done (68 ms a
// batch beside ViT-B/16's steps, 11.5 ms alone), so two CPU threads with nvJPEG feed ViT-B/16 at
// 84% of its in-memory speed, four CPU threads decoding at 44%, sixteen at 98%: the CPU decoder
// stays the default.
//
// Built where CMake finds nvJPEG beside a CUDA LibTorch (VITLAB_HAVE_NVJPEG); elsewhere the
// decoder's constructor throws UserError.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/crop_transforms.h"

namespace vitlab {

bool have_nvjpeg();

// The largest image the device decodes (pixels); larger files go to the CPU, whose DCT scaling
// decodes them at the size the crop needs instead of whole.
constexpr int64_t kMaxNvjpegPixels = int64_t{1} << 22;

// Whether a file is one for the device, from its markers (host only): a baseline JPEG (SOF0) of
// 8-bit, 3-component colour (not Adobe's untransformed RGB), at most kMaxNvjpegPixels, that ends
// with its end-of-image marker. Everything else (PNGs, progressive, greyscale and CMYK JPEGs,
// files cut short) is decoded on the CPU, which converts or names it as data.on_bad_image says.
bool nvjpeg_may_take(const std::vector<uint8_t>& bytes);

// One row of a batch for the device: its file and the crop drawn for it in the file's pixels.
struct JpegForDevice {
  const std::vector<uint8_t>* bytes = nullptr;
  CropBox box;
  bool flip = false;
  int64_t row = 0;
};

class NvJpegDecoder {
 public:
  explicit NvJpegDecoder(const torch::Device& device);
  ~NvJpegDecoder();
  NvJpegDecoder(const NvJpegDecoder&) = delete;
  NvJpegDecoder& operator=(const NvJpegDecoder&) = delete;

  std::string backend() const;  // "hardware", or "default" where the device has no engines

  // The files (indices into `files`) that nvJPEG says its backend cannot decode: the caller
  // decodes those on the CPU. Host work.
  std::vector<size_t> refused(const std::vector<JpegForDevice>& files);

  // The batch on the device: `images` ((B, 3, S, S) uint8) and `labels` copied from pinned host
  // memory (the images only where some row is not in `files`), then each of `files` decoded and
  // its crop resized over its row, on the decoder's own high-priority stream, which is waited for (the pinned memory is free again when it returns). False when
  // nvJPEG fails on the files: the caller decodes them on the CPU and calls again without them.
  // Waits while a CUDA graph is captured (cuda::OutsideCapture).
  bool finish(const torch::Tensor& images, const torch::Tensor& labels,
              const std::vector<JpegForDevice>& files, torch::Tensor* device_images,
              torch::Tensor* device_labels);

  // Lets the calling thread's current stream use and free a tensor that finish() made.
  void hand_over(const torch::Tensor& t) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vitlab
