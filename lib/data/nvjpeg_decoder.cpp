#include "data/nvjpeg_decoder.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"

#if VITLAB_HAVE_NVJPEG
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <nvjpeg.h>

#include <optional>

#include "core/cuda_util.h"
#include "data/device_crop.h"
#endif

namespace vitlab {

bool have_nvjpeg() {
#if VITLAB_HAVE_NVJPEG
  return true;
#else
  return false;
#endif
}

// The JPEG's segments up to its scan (ITU T.81 B.1): the frame header (SOF0 baseline, else
// another process, which goes to the CPU) and Adobe's APP14, whose transform 0 marks RGB stored
// without the YCbCr conversion that the engines would apply.
bool nvjpeg_may_take(const std::vector<uint8_t>& b) {
  const size_t n = b.size();
  if (n < 4 || b[0] != 0xFF || b[1] != 0xD8 || b[n - 2] != 0xFF || b[n - 1] != 0xD9) return false;
  bool frame = false, adobe_rgb = false;
  for (size_t at = 2; at + 4 <= n;) {
    if (b[at] != 0xFF) return false;
    const uint8_t marker = b[at + 1];
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // no length
      at += 2;
      continue;
    }
    const size_t length = size_t(b[at + 2]) << 8 | b[at + 3];  // with its own two bytes
    if (length < 2 || at + 2 + length > n) return false;
    const uint8_t* p = &b[at + 4];
    const size_t size = length - 2;
    if (marker == 0xC0) {
      if (size < 6) return false;
      const int64_t height = int64_t(p[1]) << 8 | p[2], width = int64_t(p[3]) << 8 | p[4];
      if (p[0] != 8 || p[5] != 3 || height == 0 || width == 0 ||
          height * width > kMaxNvjpegPixels)
        return false;
      frame = true;
    } else if (marker >= 0xC1 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
               marker != 0xCC) {
      return false;  // progressive, lossless, arithmetic coded or 12-bit
    } else if (marker == 0xEE && size >= 12 && std::equal(p, p + 5, "Adobe")) {
      adobe_rgb = p[11] == 0;
    } else if (marker == 0xDA) {
      return frame && !adobe_rgb;
    }
    at += 2 + length;
  }
  return false;
}

#if VITLAB_HAVE_NVJPEG
namespace {

void check(nvjpegStatus_t status, const char* what) {
  if (status != NVJPEG_STATUS_SUCCESS)
    throw UserError(fmt::format("data.decoder \"nvjpeg\": {} failed (nvJPEG status {})", what,
                                static_cast<int>(status)));
}

}  // namespace

struct NvJpegDecoder::Impl {
  torch::Device device;
  std::optional<c10::cuda::CUDAStream> stream;
  nvjpegHandle_t handle = nullptr;
  nvjpegJpegState_t state = nullptr;
  nvjpegJpegStream_t parsed = nullptr;
  bool hardware = false;
  size_t batch_size = 0;  // what the state was last initialised for

  explicit Impl(const torch::Device& d) : device(d) {}
  ~Impl() {
    if (parsed) nvjpegJpegStreamDestroy(parsed);
    if (state) nvjpegJpegStateDestroy(state);
    if (handle) nvjpegDestroy(handle);
  }
  bool decode(const std::vector<JpegForDevice>& files, torch::Tensor& images);
};

NvJpegDecoder::NvJpegDecoder(const torch::Device& device) : impl_(std::make_unique<Impl>(device)) {
  if (!device.is_cuda())
    throw UserError("data.decoder \"nvjpeg\" decodes on a CUDA device; CPU runs use \"cpu\"");
  c10::cuda::CUDAGuard guard(device);
  // High priority, so that its few kernels run between the training step's. (It does not lift
  // the limit README "Streamed image folders" measures: nvjpegDecodeBatched on the engines
  // returns only once the device's earlier work is done, 68 ms a batch beside ViT-B/16's steps
  // against 11.5 ms alone, whatever the stream's priority, the step's stream or the allocators.)
  impl_->stream = at::cuda::getStreamFromPool(/*isHighPriority=*/true, device.index());
  impl_->hardware =
      nvjpegCreateEx(NVJPEG_BACKEND_HARDWARE, nullptr, nullptr, 0, &impl_->handle) ==
      NVJPEG_STATUS_SUCCESS;
  if (!impl_->hardware)
    check(nvjpegCreateEx(NVJPEG_BACKEND_DEFAULT, nullptr, nullptr, 0, &impl_->handle),
          "creating a handle");
  check(nvjpegJpegStateCreate(impl_->handle, &impl_->state), "creating its state");
  check(nvjpegJpegStreamCreate(impl_->handle, &impl_->parsed), "creating a stream parser");
}

NvJpegDecoder::~NvJpegDecoder() = default;

std::string NvJpegDecoder::backend() const {
  return impl_->hardware ? "hardware" : "default";
}

std::vector<size_t> NvJpegDecoder::refused(const std::vector<JpegForDevice>& files) {
  cuda::OutsideCapture outside;  // parsing may allocate
  std::vector<size_t> out;
  if (!impl_->hardware) return out;  // the other backends decode every baseline JPEG
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& bytes = *files[i].bytes;
    int supported = -1;  // 0: the engines take it
    if (nvjpegJpegStreamParseHeader(impl_->handle, bytes.data(), bytes.size(), impl_->parsed) !=
            NVJPEG_STATUS_SUCCESS ||
        nvjpegDecodeBatchedSupported(impl_->handle, impl_->parsed, &supported) !=
            NVJPEG_STATUS_SUCCESS ||
        supported != 0)
      out.push_back(i);
  }
  return out;
}

// Each file decoded whole into one device buffer (RGB interleaved, back to back), then every crop
// resized into its row by one kernel; on the current stream. False on any nvJPEG failure.
bool NvJpegDecoder::Impl::decode(const std::vector<JpegForDevice>& files, torch::Tensor& images) {
  std::vector<const unsigned char*> data;
  std::vector<size_t> lengths;
  std::vector<DeviceCrop> crops;
  int64_t total = 0;
  for (const JpegForDevice& f : files) {
    int components = 0, widths[NVJPEG_MAX_COMPONENT] = {}, heights[NVJPEG_MAX_COMPONENT] = {};
    nvjpegChromaSubsampling_t subsampling;
    if (nvjpegGetImageInfo(handle, f.bytes->data(), f.bytes->size(), &components, &subsampling,
                           widths, heights) != NVJPEG_STATUS_SUCCESS)
      return false;
    DeviceCrop c;
    c.height = heights[0];
    c.width = widths[0];
    c.pitch = c.width * 3;
    c.box = f.box;
    c.flip = f.flip;
    c.row = f.row;
    // The crop was drawn in the size the CPU read from the header: the same, or the CPU decodes.
    if (f.box.top + f.box.height > c.height || f.box.left + f.box.width > c.width) return false;
    crops.push_back(c);
    data.push_back(f.bytes->data());
    lengths.push_back(f.bytes->size());
    total += c.height * c.pitch;
  }
  auto pixels = torch::empty({total}, images.options());  // each file's (H, W, 3), back to back
  std::vector<nvjpegImage_t> outputs(files.size());
  int64_t at = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    crops[i].image = pixels.data_ptr<uint8_t>() + at;
    outputs[i].channel[0] = pixels.data_ptr<uint8_t>() + at;
    outputs[i].pitch[0] = static_cast<size_t>(crops[i].pitch);
    at += crops[i].height * crops[i].pitch;
  }
  if (batch_size != files.size()) {
    if (nvjpegDecodeBatchedInitialize(handle, state, static_cast<int>(files.size()), 1,
                                      NVJPEG_OUTPUT_RGBI) != NVJPEG_STATUS_SUCCESS)
      return false;
    batch_size = files.size();
  }
  if (nvjpegDecodeBatched(handle, state, data.data(), lengths.data(), outputs.data(),
                          stream->stream()) != NVJPEG_STATUS_SUCCESS)
    return false;
  crop_resize_on_device(crops, images);
  return true;
}

bool NvJpegDecoder::finish(const torch::Tensor& images, const torch::Tensor& labels,
                           const std::vector<JpegForDevice>& files, torch::Tensor* device_images,
                           torch::Tensor* device_labels) {
  cuda::OutsideCapture outside;
  c10::cuda::CUDAGuard device_guard(impl_->device);
  c10::cuda::CUDAStreamGuard stream_guard(*impl_->stream);
  // (B, 3, S, S): the CPU's rows copied, unless the device makes every row.
  auto on_device = static_cast<int64_t>(files.size()) == images.size(0)
                       ? torch::empty(images.sizes(), images.options().device(impl_->device))
                       : images.to(impl_->device, /*non_blocking=*/true);
  auto labels_on_device = labels.to(impl_->device, /*non_blocking=*/true);
  bool ok = false;
  try {
    ok = files.empty() || impl_->decode(files, on_device);
  } catch (...) {
    impl_->stream->synchronize();  // the copies out of the pinned memory
    throw;
  }
  impl_->stream->synchronize();
  if (ok) {
    *device_images = on_device;
    *device_labels = labels_on_device;
  }
  return ok;
}

void NvJpegDecoder::hand_over(const torch::Tensor& t) const {
  // Made on the decoder's stream and finished there: the consumer's stream uses it next, and the
  // allocator must not give its memory back to the decoder's stream before that use is done.
  c10::cuda::CUDACachingAllocator::recordStream(
      t.storage().data_ptr(), at::cuda::getCurrentCUDAStream(impl_->device.index()));
}

#else
struct NvJpegDecoder::Impl {};

NvJpegDecoder::NvJpegDecoder(const torch::Device&) {
  throw UserError(
      "data.decoder \"nvjpeg\": this vitlab was built without nvJPEG (a GPU build finds it in the "
      "CUDA toolkit: scripts/gpu_build.sh); use data.decoder \"cpu\"");
}
NvJpegDecoder::~NvJpegDecoder() = default;
std::string NvJpegDecoder::backend() const {
  return "none";
}
std::vector<size_t> NvJpegDecoder::refused(const std::vector<JpegForDevice>&) {
  return {};
}
bool NvJpegDecoder::finish(const torch::Tensor&, const torch::Tensor&,
                           const std::vector<JpegForDevice>&, torch::Tensor*, torch::Tensor*) {
  return false;
}
void NvJpegDecoder::hand_over(const torch::Tensor&) const {}
#endif

}  // namespace vitlab
