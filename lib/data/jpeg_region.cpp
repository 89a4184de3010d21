#include "data/jpeg_region.h"

#include <algorithm>
#include <memory>

#include "core/error.h"

#if VITLAB_HAVE_LIBJPEG
#include <csetjmp>
#include <cstdio>

#include <jerror.h>
#include <jpeglib.h>
#endif

namespace vitlab {

#if VITLAB_HAVE_LIBJPEG
namespace {

// Columns decoded beyond each side of the box: one block of 4:2:0 chroma at full scale.
constexpr int64_t kMargin = 16;

// libjpeg reports errors through error_exit, which must not return: it jumps back to the
// setjmp in read_header or read_rows. Between a setjmp and its longjmp only plain C objects
// live, so the jump skips no destructor.
struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {0};
  bool premature_end = false;
};

void on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<ErrorManager*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings keep the image, as TurboJPEG's do, except a premature end of the data: the rows
// after it would be guesses (decode_rgb refuses such files too).
void on_message(j_common_ptr c, int level) {
  auto* e = reinterpret_cast<ErrorManager*>(c->err);
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) e->premature_end = true;
}

// The header, the output size at the scale, and the decompressor started; false on an error.
bool start(jpeg_decompress_struct& ci, ErrorManager& e, const std::vector<uint8_t>& bytes,
           int scale_num, int scale_denom) {
  if (setjmp(e.jump)) return false;
  jpeg_mem_src(&ci, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&ci, TRUE);
  const bool cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
  ci.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  ci.scale_num = static_cast<unsigned int>(scale_num);
  ci.scale_denom = static_cast<unsigned int>(scale_denom);
  jpeg_calc_output_dimensions(&ci);
  return true;
}

// Decoding limited to columns [*left, *left + *width) (widened to whole blocks in place), rows
// `top` on; false on an error.
bool crop(jpeg_decompress_struct& ci, ErrorManager& e, JDIMENSION* left, JDIMENSION* width,
          JDIMENSION top) {
  if (setjmp(e.jump)) return false;
  jpeg_start_decompress(&ci);
  jpeg_crop_scanline(&ci, left, width);
  if (top > 0) jpeg_skip_scanlines(&ci, top);
  return true;
}

// `rows` rows of ci.output_width pixels into `out`; false on an error.
bool read_rows(jpeg_decompress_struct& ci, ErrorManager& e, uint8_t* out, JDIMENSION rows) {
  if (setjmp(e.jump)) return false;
  const size_t stride = size_t{ci.output_width} * static_cast<size_t>(ci.output_components);
  JSAMPROW pointers[16];
  JDIMENSION done = 0;
  while (done < rows && !e.premature_end) {
    const JDIMENSION n = std::min<JDIMENSION>(rows - done, 16);
    for (JDIMENSION i = 0; i < n; ++i) pointers[i] = out + (done + i) * stride;
    const JDIMENSION got = jpeg_read_scanlines(&ci, pointers, n);
    if (got == 0) e.premature_end = true;  // no rows left: the rest would be unset
    done += got;
  }
  return true;
}

}  // namespace

bool have_jpeg_regions() { return true; }

JpegRegion decode_jpeg_region(const std::vector<uint8_t>& bytes, const std::string& path,
                              int scale_num, int scale_denom, const CropBox& file_box) {
  jpeg_decompress_struct ci;
  ErrorManager e;
  ci.err = jpeg_std_error(&e.pub);
  e.pub.error_exit = on_error;
  e.pub.emit_message = on_message;
  jpeg_create_decompress(&ci);
  std::unique_ptr<jpeg_decompress_struct, void (*)(jpeg_decompress_struct*)> guard(
      &ci, jpeg_destroy_decompress);
  const auto failed = [&](const char* why) {
    fail<DataError>("{}: cannot decode JPEG: {}", path, why);
  };
  if (!start(ci, e, bytes, scale_num, scale_denom)) failed(e.message);
  JpegRegion r;
  r.file_height = ci.image_height;
  r.file_width = ci.image_width;
  const CropBox box = scale_box(file_box, ci.image_height, ci.image_width, ci.output_height,
                                ci.output_width);
  // The columns asked for reach kMargin beyond the box on each side: libjpeg-turbo's smooth
  // chroma upsampling of the last column decoded differs from the whole image's, which reads the
  // next block (seen on a 4:2:0 file).
  const int64_t from = std::max<int64_t>(0, box.left - kMargin);
  const int64_t to = std::min<int64_t>(ci.output_width, box.left + box.width + kMargin);
  JDIMENSION left = static_cast<JDIMENSION>(from), width = static_cast<JDIMENSION>(to - from);
  if (!crop(ci, e, &left, &width, static_cast<JDIMENSION>(box.top))) failed(e.message);
  r.pixels = torch::empty({box.height, int64_t{width}, int64_t{ci.output_components}},
                          torch::kUInt8);  // (rows, cols, 3 or 4)
  if (!read_rows(ci, e, r.pixels.data_ptr<uint8_t>(), static_cast<JDIMENSION>(box.height)))
    failed(e.message);
  if (e.premature_end) failed("Premature end of JPEG file");
  r.box = {0, box.left - int64_t{left}, box.height, box.width};
  return r;
}

#else

bool have_jpeg_regions() { return false; }

JpegRegion decode_jpeg_region(const std::vector<uint8_t>&, const std::string& path, int, int,
                              const CropBox&) {
  fail<DataError>("{}: decoding part of a JPEG needs libjpeg, which this build lacks", path);
}

#endif

}  // namespace vitlab
