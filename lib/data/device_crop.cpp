#include "data/device_crop.h"

#include "core/error.h"

#if VITLAB_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include <cstring>

#include "data/cuda/crop_resize_kernels.h"
#endif

namespace vitlab {

#if VITLAB_WITH_CUDA
namespace {

// Appends one axis's table (first, then count, then the weights) for the kernel.
void add_axis(const AxisWeights& a, std::vector<int32_t>& ints, std::vector<float>& weights,
              int64_t* ints_at, int64_t* weights_at, int32_t* taps) {
  *ints_at = static_cast<int64_t>(ints.size());
  *weights_at = static_cast<int64_t>(weights.size());
  *taps = static_cast<int32_t>(a.taps);
  for (int64_t f : a.first) ints.push_back(static_cast<int32_t>(f));
  for (int64_t c : a.count) ints.push_back(static_cast<int32_t>(c));
  weights.insert(weights.end(), a.weights.begin(), a.weights.end());
}

// Host bytes to a new device tensor on the current stream (a pageable copy: the host is free of
// them when it returns).
torch::Tensor to_device(const void* data, size_t bytes, const torch::Device& device) {
  auto host = torch::empty({static_cast<int64_t>(bytes)}, torch::kUInt8);
  if (bytes) std::memcpy(host.data_ptr<uint8_t>(), data, bytes);
  return host.to(device);
}

}  // namespace

void crop_resize_on_device(const std::vector<DeviceCrop>& crops, torch::Tensor& out) {
  TORCH_CHECK(out.is_cuda() && out.dim() == 4 && out.size(1) == 3 && out.size(2) == out.size(3) &&
                  out.scalar_type() == torch::kUInt8 && out.is_contiguous(),
              "crop_resize_on_device: out must be (B, 3, S, S) contiguous uint8 on a CUDA device");
  if (crops.empty()) return;
  const int64_t s = out.size(2);
  std::vector<kernels::CropResizeJob> jobs;
  std::vector<int32_t> ints;
  std::vector<float> weights;
  for (const DeviceCrop& c : crops) {
    const CropBox& b = c.box;
    TORCH_CHECK(b.top >= 0 && b.left >= 0 && b.height > 0 && b.width > 0 &&
                    b.top + b.height <= c.height && b.left + b.width <= c.width &&
                    c.row >= 0 && c.row < out.size(0) && c.pitch >= 3 * c.width,
                "crop_resize_on_device: box or row outside the image or the batch");
    kernels::CropResizeJob j;
    j.image = c.image;
    j.pitch = c.pitch;
    j.top = static_cast<int32_t>(b.top);
    j.left = static_cast<int32_t>(b.left);
    j.row = static_cast<int32_t>(c.row);
    j.flip = c.flip ? 1 : 0;
    add_axis(axis_weights(b.height, s), ints, weights, &j.y_ints, &j.y_weights, &j.y_taps);
    add_axis(axis_weights(b.width, s), ints, weights, &j.x_ints, &j.x_weights, &j.x_taps);
    jobs.push_back(j);
  }
  const torch::Device device = out.device();
  // Kept until the kernel has run: freed into the current stream's pool, they are reused only by
  // work queued after it.
  const auto jobs_dev = to_device(jobs.data(), jobs.size() * sizeof(jobs[0]), device);
  const auto ints_dev = to_device(ints.data(), ints.size() * sizeof(int32_t), device);
  const auto weights_dev = to_device(weights.data(), weights.size() * sizeof(float), device);
  kernels::CropResizeArgs a;
  a.jobs = reinterpret_cast<const kernels::CropResizeJob*>(jobs_dev.data_ptr<uint8_t>());
  a.count = static_cast<int32_t>(jobs.size());
  a.ints = reinterpret_cast<const int32_t*>(ints_dev.data_ptr<uint8_t>());
  a.weights = reinterpret_cast<const float*>(weights_dev.data_ptr<uint8_t>());
  a.out = out.data_ptr<uint8_t>();
  a.size = static_cast<int32_t>(s);
  kernels::crop_resize_batch(a, at::cuda::getCurrentCUDAStream(device.index()).stream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}
#else
void crop_resize_on_device(const std::vector<DeviceCrop>&, torch::Tensor&) {
  throw UserError("crop_resize_on_device: this vitlab was built without CUDA");
}
#endif

torch::Tensor crop_resize_on_device(const std::vector<torch::Tensor>& images,
                                    const std::vector<CropBox>& boxes,
                                    const std::vector<bool>& flips, int64_t size) {
  TORCH_CHECK(!images.empty() && images.size() == boxes.size() && images.size() == flips.size(),
              "crop_resize_on_device: one box and one flip per image");
  auto out = torch::empty({static_cast<int64_t>(images.size()), 3, size, size},
                          images[0].options().dtype(torch::kUInt8));  // (B, 3, S, S)
  std::vector<DeviceCrop> crops;
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& im = images[i];
    TORCH_CHECK(im.dim() == 3 && im.size(2) == 3 && im.scalar_type() == torch::kUInt8 &&
                    im.is_contiguous() && im.device() == out.device(),
                "crop_resize_on_device: images are (H, W, 3) contiguous uint8 on one device");
    crops.push_back({im.data_ptr<uint8_t>(), im.size(0), im.size(1), im.size(1) * 3, boxes[i],
                     flips[i], static_cast<int64_t>(i)});
  }
  crop_resize_on_device(crops, out);
  return out;
}

}  // namespace vitlab
