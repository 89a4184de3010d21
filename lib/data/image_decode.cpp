#include "data/image_decode.h"

#include <stb/stb_image.h>

#include <memory>

#include "core/error.h"
#include "data/image_checks.h"
#include "data/jpeg_region.h"
#if VITLAB_HAVE_TURBOJPEG
#include <turbojpeg.h>
#endif

namespace vitlab {
namespace {

constexpr int64_t kMaxFilePixels = int64_t{1} << 28;    // 16384 x 16384 before downscaling
constexpr int64_t kMaxOutputPixels = int64_t{1} << 26;  // 8192 x 8192 decoded

bool is_jpeg(const std::vector<uint8_t>& b) {
  return b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF;
}
bool is_png(const std::vector<uint8_t>& b) {
  static const uint8_t magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return b.size() >= 8 && std::equal(magic, magic + 8, b.begin());
}

// Refuses an empty file and one over kMaxImageFileBytes, naming it, before any header is read.
void check_file_size(const std::vector<uint8_t>& bytes, const std::string& path) {
  if (bytes.empty()) fail<DataError>("{}: empty image file", path);
  if (bytes.size() > kMaxImageFileBytes) fail<DataError>("{}: image file too large", path);
}

void check_size(int64_t height, int64_t width, int64_t limit, const std::string& path) {
  if (height <= 0 || width <= 0 || height * width > limit)
    fail<DataError>("{}: image size {}x{} is empty or larger than {} pixels", path, width, height,
                    limit);
}

// Adobe's inverted CMYK ((H, W, 4) uint8) to RGB: R = C * K / 255, as libjpeg-turbo's own tools
// convert it.
torch::Tensor cmyk_to_rgb(const torch::Tensor& cmyk) {
  const auto k = cmyk.select(2, 3).to(torch::kInt32).unsqueeze(2);
  const auto cmy = cmyk.narrow(2, 0, 3).to(torch::kInt32);
  return ((cmy * k + 127) / 255).to(torch::kUInt8).contiguous();  // (H, W, 3)
}

#if VITLAB_HAVE_TURBOJPEG
// One handle per thread: TurboJPEG handles are not thread-safe, and making one per image costs
// an allocation of its working state.
tjhandle decompressor() {
  thread_local std::unique_ptr<void, int (*)(tjhandle)> handle(tjInitDecompress(), tjDestroy);
  if (!handle)
    fail<DataError>("TurboJPEG: cannot create a decompressor: {}", tjGetErrorStr2(nullptr));
  return handle.get();
}

// The smallest of TurboJPEG's scaling factors that keeps both sides >= min_side (1/1 if none).
tjscalingfactor scaling_for(int width, int height, int64_t min_side) {
  tjscalingfactor best{1, 1};
  if (min_side <= 0) return best;
  int count = 0;
  const tjscalingfactor* factors = tjGetScalingFactors(&count);
  for (int i = 0; i < count; ++i) {
    const tjscalingfactor f = factors[i];
    if (f.num > f.denom) continue;  // upscaling
    if (TJSCALED(width, f) >= min_side && TJSCALED(height, f) >= min_side &&
        f.num * best.denom < best.num * f.denom)
      best = f;
  }
  return best;
}

// A JPEG's header: its size, checked (a header can claim 0x0), and its colour space.
struct JpegHeader {
  int width = 0, height = 0, colorspace = 0;
};

JpegHeader read_jpeg_header(tjhandle tj, const std::vector<uint8_t>& bytes,
                            const std::string& path) {
  JpegHeader h;
  int subsampling = 0;
  if (tjDecompressHeader3(tj, const_cast<unsigned char*>(bytes.data()),
                          static_cast<unsigned long>(bytes.size()), &h.width, &h.height,
                          &subsampling, &h.colorspace) != 0)
    fail<DataError>("{}: cannot decode JPEG: {}", path, tjGetErrorStr2(tj));
  check_size(h.height, h.width, kMaxFilePixels, path);
  return h;
}

// scaling_for the header's size, with the decoded size checked.
tjscalingfactor checked_scaling(const JpegHeader& header, int64_t min_side,
                                const std::string& path) {
  const tjscalingfactor f = scaling_for(header.width, header.height, min_side);
  check_size(TJSCALED(header.height, f), TJSCALED(header.width, f), kMaxOutputPixels, path);
  return f;
}

// The JPEG's pixels at w x h (a scaling of the header's size) in TurboJPEG's pixel format
// `format` of `channels` bytes: (h, w, channels) uint8.
torch::Tensor decompress(tjhandle tj, const std::vector<uint8_t>& bytes, const std::string& path,
                         int w, int h, int format, int channels) {
  auto out = torch::empty({h, w, channels}, torch::kUInt8);
  if (tjDecompress2(tj, const_cast<unsigned char*>(bytes.data()),
                    static_cast<unsigned long>(bytes.size()), out.data_ptr<uint8_t>(), w, 0, h,
                    format, 0) != 0) {
    // A truncated file's "premature end" fails, its missing rows would be guesses; other warnings
    // leave a whole image.
    const std::string why = tjGetErrorStr2(tj);
    if (tjGetErrorCode(tj) != TJERR_WARNING || why.find("Premature end") != std::string::npos)
      fail<DataError>("{}: cannot decode JPEG: {}", path, why);
  }
  return out;
}

// The JPEG whose header `tj` read, as RGB.
DecodedImage decode_header_read(tjhandle tj, const JpegHeader& header,
                                const std::vector<uint8_t>& bytes, const std::string& path,
                                int64_t min_side) {
  const tjscalingfactor f = checked_scaling(header, min_side, path);
  const int w = TJSCALED(header.width, f), h = TJSCALED(header.height, f);
  const bool cmyk = header.colorspace == TJCS_CMYK || header.colorspace == TJCS_YCCK;
  const auto out = decompress(tj, bytes, path, w, h, cmyk ? TJPF_CMYK : TJPF_RGB, cmyk ? 4 : 3);
  return {cmyk ? cmyk_to_rgb(out) : out, header.height, header.width, {}};
}

DecodedImage decode_with_turbojpeg(const std::vector<uint8_t>& bytes, const std::string& path,
                                   int64_t min_side) {
  tjhandle tj = decompressor();
  return decode_header_read(tj, read_jpeg_header(tj, bytes, path), bytes, path, min_side);
}

// decode_image_bytes for a JPEG: (H, W, channels), channels as decode_with_stb's.
torch::Tensor decode_jpeg_channels(const std::vector<uint8_t>& bytes, const std::string& path,
                                   int channels) {
  tjhandle tj = decompressor();
  const JpegHeader header = read_jpeg_header(tj, bytes, path);
  const bool grey = header.colorspace == TJCS_GRAY;
  const int wanted = channels > 0 ? channels : (grey ? 1 : 3);
  if (wanted == 1 && grey) {
    check_size(header.height, header.width, kMaxOutputPixels, path);
    return decompress(tj, bytes, path, header.width, header.height, TJPF_GRAY, 1);  // (H, W, 1)
  }
  const auto rgb = decode_header_read(tj, header, bytes, path, 0).hwc;  // (H, W, 3)
  if (wanted == 3) return rgb;
  // stb_image's luma, so that a grey model reads colour JPEGs as it reads colour PNGs.
  const auto c = rgb.to(torch::kInt32);
  const auto y = c.select(2, 0) * 77 + c.select(2, 1) * 150 + c.select(2, 2) * 29;
  return torch::div(y, 256, "floor").to(torch::kUInt8).unsqueeze(2).contiguous();  // (H, W, 1)
}

// Whether the JPEG's last bytes hold its end-of-image marker (0xFF 0xD9). Inside entropy-coded
// data 0xFF is followed only by 0x00 or a restart marker, so a file cut there has none.
bool has_end_marker(const std::vector<uint8_t>& b) {
  const size_t from = b.size() > 64 ? b.size() - 64 : 0;
  for (size_t i = from; i + 1 < b.size(); ++i)
    if (b[i] == 0xFF && b[i + 1] == 0xD9) return true;
  return false;
}
#endif

}  // namespace

torch::Tensor decode_with_stb(const std::vector<uint8_t>& bytes, const std::string& path,
                              int channels) {
  check_file_size(bytes, path);
  check_image_bytes(bytes, path);  // what stb 2.27 trusts
  const int length = static_cast<int>(bytes.size());
  int w = 0, h = 0, file_channels = 0;
  // The header's size is checked before stb allocates anything.
  if (!stbi_info_from_memory(bytes.data(), length, &w, &h, &file_channels))
    fail<DataError>("{}: cannot decode image: {}", path, stbi_failure_reason());
  check_size(h, w, kMaxOutputPixels, path);
  const int wanted = channels > 0 ? channels : (file_channels <= 2 ? 1 : 3);
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(bytes.data(), length, &w, &h, &file_channels, wanted), stbi_image_free);
  if (!pixels) fail<DataError>("{}: cannot decode image: {}", path, stbi_failure_reason());
  // (H, W, C), copied so that the tensor owns its memory.
  return torch::from_blob(pixels.get(), {h, w, wanted}, torch::kUInt8).clone();
}

torch::Tensor decode_image_bytes(const std::vector<uint8_t>& bytes, const std::string& path,
                                 int channels) {
#if VITLAB_HAVE_TURBOJPEG
  // Whatever stb would read as a JPEG, from its SOI marker: libjpeg does not skip the 0xFF fill
  // bytes that stb skips before it (found by fuzzing).
  const int64_t soi = jpeg_soi_offset(bytes);
  if (soi >= 0) {
    check_file_size(bytes, path);
    check_image_bytes(bytes, path);  // the refusals of the stb path: the same files in every build
    if (soi == 0) return decode_jpeg_channels(bytes, path, channels);
    return decode_jpeg_channels({bytes.begin() + soi, bytes.end()}, path, channels);
  }
#endif
  return decode_with_stb(bytes, path, channels);
}

std::pair<int64_t, int64_t> image_size_of(const std::vector<uint8_t>& bytes,
                                          const std::string& path) {
  check_file_size(bytes, path);
  if (!is_jpeg(bytes) && !is_png(bytes)) fail<DataError>("{}: not a JPEG or PNG file", path);
  int w = 0, h = 0;
#if VITLAB_HAVE_TURBOJPEG
  if (is_jpeg(bytes)) {
    const JpegHeader header = read_jpeg_header(decompressor(), bytes, path);
    return {header.height, header.width};
  }
#endif
  int channels = 0;
  check_image_bytes(bytes, path);
  if (!stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &channels))
    fail<DataError>("{}: cannot decode image: {}", path, stbi_failure_reason());
  check_size(h, w, kMaxOutputPixels, path);
  return {h, w};
}

bool have_turbojpeg() {
#if VITLAB_HAVE_TURBOJPEG
  return true;
#else
  return false;
#endif
}

DecodedImage decode_rgb(const std::vector<uint8_t>& bytes, const std::string& path,
                        int64_t min_side) {
  check_file_size(bytes, path);
  if (!is_jpeg(bytes) && !is_png(bytes)) fail<DataError>("{}: not a JPEG or PNG file", path);
#if VITLAB_HAVE_TURBOJPEG
  if (is_jpeg(bytes)) return decode_with_turbojpeg(bytes, path, min_side);
#else
  (void)min_side;
#endif
  const auto hwc = decode_with_stb(bytes, path, 3);  // (H, W, 3)
  return {hwc, hwc.size(0), hwc.size(1), {}};
}

DecodedImage decode_rgb_box(const std::vector<uint8_t>& bytes, const std::string& path,
                            const CropBox& file_box, int64_t min_side) {
#if VITLAB_HAVE_TURBOJPEG
  if (have_jpeg_regions() && is_jpeg(bytes) && bytes.size() <= kMaxImageFileBytes &&
      has_end_marker(bytes)) {
    const JpegHeader header = read_jpeg_header(decompressor(), bytes, path);
    const tjscalingfactor f = checked_scaling(header, min_side, path);
    const JpegRegion r = decode_jpeg_region(bytes, path, f.num, f.denom, file_box);
    DecodedImage d{r.pixels.size(2) == 4 ? cmyk_to_rgb(r.pixels) : r.pixels, r.file_height,
                   r.file_width, r.box};
    return d;
  }
#endif
  DecodedImage d = decode_rgb(bytes, path, min_side);
  d.box = scale_box(file_box, d.file_height, d.file_width, d.hwc.size(0), d.hwc.size(1));
  return d;
}

std::vector<uint8_t> encode_jpeg(const torch::Tensor& hwc, int quality) {
#if VITLAB_HAVE_TURBOJPEG
  TORCH_CHECK(hwc.dim() == 3 && hwc.scalar_type() == torch::kUInt8, "encode_jpeg: (H, W, C) uint8");
  const auto image = hwc.contiguous();
  const int h = static_cast<int>(image.size(0)), w = static_cast<int>(image.size(1));
  const int64_t c = image.size(2);
  TORCH_CHECK(c == 1 || c == 3 || c == 4, "encode_jpeg: 1, 3 or 4 channels, not ", c);
  const int format = c == 1 ? TJPF_GRAY : c == 3 ? TJPF_RGB : TJPF_CMYK;
  const int sampling = c == 1 ? TJSAMP_GRAY : c == 3 ? TJSAMP_420 : TJSAMP_444;
  std::unique_ptr<void, int (*)(tjhandle)> tj(tjInitCompress(), tjDestroy);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  if (!tj || tjCompress2(tj.get(), image.data_ptr<uint8_t>(), w, 0, h, format, &buffer, &size,
                         sampling, quality, 0) != 0) {
    const std::string why = tjGetErrorStr2(tj.get());
    tjFree(buffer);
    fail<DataError>("TurboJPEG: cannot encode a {}x{} image: {}", w, h, why);
  }
  std::vector<uint8_t> out(buffer, buffer + size);
  tjFree(buffer);
  return out;
#else
  (void)hwc;
  (void)quality;
  fail<DataError>(
      "encoding JPEGs needs TurboJPEG, which this build lacks (Debian: libturbojpeg0-dev)");
#endif
}

}  // namespace vitlab
