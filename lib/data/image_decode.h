// Decoding one image file to RGB for streamed image folders (data too large to keep decoded).
// JPEGs go through libjpeg-turbo's TurboJPEG API when the build has it (VITLAB_HAVE_TURBOJPEG),
// which can decode straight to 1/2, 1/4 or 1/8 of the size by dropping DCT coefficients: an
// ImageNet JPEG of ~500x375 read for a 224 px crop decodes at full size, a 4000x3000 photo at 1/8.
// PNGs, and JPEGs in builds without TurboJPEG, go through stb_image (no downscaling).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/crop_transforms.h"

namespace vitlab {

// The largest image file read (a guard against reading a huge non-image into memory).
constexpr uint64_t kMaxImageFileBytes = uint64_t{1} << 28;  // 256 MiB

struct DecodedImage {
  torch::Tensor hwc;        // (H, W, 3) uint8 RGB, contiguous
  int64_t file_height = 0;  // the size stored in the file, before any downscaling
  int64_t file_width = 0;
  CropBox box;              // decode_rgb_box: where the crop lies in hwc
};

// Decodes `bytes` (the contents of `path`, named in errors) to RGB: greyscale is replicated,
// CMYK and YCCK JPEGs are converted (as Adobe writes them, inverted: R = C * K / 255), alpha is
// dropped. A JPEG is downscaled in the DCT domain by the largest factor that keeps both sides at
// least `min_side` pixels (0: never). Throws DataError naming `path` for an empty, truncated or
// corrupt file, an unknown format, or more than 2^26 pixels. libjpeg's other warnings (such as
// extraneous bytes before a marker, which PIL reads past too) keep the decoded image.
DecodedImage decode_rgb(const std::vector<uint8_t>& bytes, const std::string& path,
                        int64_t min_side);

// decode_rgb for one crop, `file_box` in the file's pixels: `hwc` holds at least the part of the
// image that the crop covers, at the scale decode_rgb would choose, and `box` says where the crop
// lies in it. A JPEG that ends with its end-of-image marker is decoded only in that part where
// the build can (data/jpeg_region.h); other files whole. Either way the crop's pixels are those
// of decode_rgb's image at scale_box(file_box).
DecodedImage decode_rgb_box(const std::vector<uint8_t>& bytes, const std::string& path,
                            const CropBox& file_box, int64_t min_side);

// The size stored in a JPEG's or PNG's header, without decoding: (height, width). DataError
// naming `path` as decode_rgb's.
std::pair<int64_t, int64_t> image_size_of(const std::vector<uint8_t>& bytes, const std::string& path);

// `bytes` through stb_image as (H, W, channels) uint8, owning its memory: channels 1 or 3 (stb
// converts grey to RGB by replication, RGB to grey by luma, and drops alpha), or 0 for 1 when the
// file is grey (with or without alpha), else 3. The checks of decode_rgb, without its
// downscaling. For PNGs, and JPEGs without TurboJPEG.
torch::Tensor decode_with_stb(const std::vector<uint8_t>& bytes, const std::string& path,
                              int channels);

// `bytes` as (H, W, channels) uint8 for the in-memory image-folder reader, `channels` as
// decode_with_stb's: JPEGs through TurboJPEG where the build has it (the streamed reader's
// pixels; Debian's stb 2.27 shifts past its bit buffer on a JPEG whose entropy-coded data runs
// out, found by fuzzing), PNGs and the rest through decode_with_stb. A colour JPEG asked for one
// channel gets stb's luma, (77 R + 150 G + 29 B) >> 8.
torch::Tensor decode_image_bytes(const std::vector<uint8_t>& bytes, const std::string& path,
                                 int channels);

// Whether JPEGs are decoded by TurboJPEG in this build.
bool have_turbojpeg();

// A JPEG of `rgb` ((H, W, 3) uint8) at `quality`, or of `cmyk` ((H, W, 4) uint8, stored inverted
// as Adobe does) when it has 4 channels: for tests and the synthetic-folder generator. Needs
// TurboJPEG (DataError otherwise).
std::vector<uint8_t> encode_jpeg(const torch::Tensor& hwc, int quality);

}  // namespace vitlab
