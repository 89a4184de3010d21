#include "data/image_checks.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace vitlab {
namespace {

using Bytes = std::vector<uint8_t>;

// Deflate expands at most 1032:1, so a PNG's filtered rows need at least 1/1032 of their size
// in IDAT bytes. A JPEG codes every 8x8 block of its first component with at least one bit, so
// it holds at most 512 pixels per byte; twice that is allowed. The slack covers tiny images.
constexpr uint64_t kMaxDeflateRatio = 1032;
constexpr uint64_t kMaxJpegPixelsPerByte = 1024;
constexpr uint64_t kSlackBytes = 4096;

uint32_t be32(const Bytes& b, size_t at) {
  return uint32_t{b[at]} << 24 | uint32_t{b[at + 1]} << 16 | uint32_t{b[at + 2]} << 8 | b[at + 3];
}

std::string printable(std::string text) {
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '?';
  return text;
}

[[noreturn]] void corrupt(const std::string& path, const std::string& format,
                          const std::string& what) {
  fail<DataError>("{}: cannot decode image: corrupt or truncated {} ({})", path, format, what);
}

// Bytes of filtered rows (one filter byte per row) that the IHDR's size, depth and colour type
// need, without interlacing (which needs more).
uint64_t png_row_bytes(const Bytes& b) {
  const uint64_t width = be32(b, 16), height = be32(b, 20), depth = b[24];
  const int colour = b[25];
  const uint64_t channels = colour == 2 ? 3 : colour == 4 ? 2 : colour == 6 ? 4 : 1;
  return height * (1 + (width * channels * depth + 7) / 8);
}

// stb 2.27 allocates an IDAT chunk's declared length before reading it, and inflates the rows
// into a buffer of the size the header declares.
void check_png(const Bytes& b, const std::string& path) {
  // Without a complete IHDR first, stb refuses the file itself.
  if (b.size() < 29 || std::string(b.begin() + 12, b.begin() + 16) != "IHDR") return;
  uint64_t idat = 0;
  for (size_t i = 8; i + 8 <= b.size();) {
    const uint64_t length = be32(b, i);
    const std::string type(b.begin() + i + 4, b.begin() + i + 8);
    if (length > b.size() - i - 8)
      corrupt(path, "PNG",
              fmt::format("chunk \"{}\" declares {} bytes, {} remain", printable(type), length,
                          b.size() - i - 8));
    if (type == "IDAT") idat += length;
    if (type == "IEND") break;
    i += 12 + length;
  }
  // Sides over 2^24 are left to stb, which refuses them (over 2^14), so that the product of the
  // sizes below stays far inside 64 bits.
  if (be32(b, 16) > (1u << 24) || be32(b, 20) > (1u << 24)) return;
  const uint64_t rows = png_row_bytes(b);
  if (rows > kMaxDeflateRatio * idat + kSlackBytes)
    corrupt(path, "PNG",
            fmt::format("{}x{} pixels need {} bytes, more than its {} compressed "
                        "bytes can hold",
                        be32(b, 16), be32(b, 20), rows, idat));
}

// The Huffman tables the segments so far defined, by class (0 DC, 1 AC) and slot (0-3).
struct HuffmanSlots {
  bool defined[2][4] = {};
};

// One JPEG Huffman table (DHT) starting at `t`: a class byte, 16 code counts, the symbols.
// Returns the table's size. stb reads bytes missing at the end of a cut file as zeros.
size_t check_huffman_table(const Bytes& b, size_t t, HuffmanSlots& slots, const std::string& path) {
  size_t symbols = 0;
  for (size_t k = 1; k <= 16 && t + k < b.size(); ++k) symbols += b[t + k];
  if (symbols > 256)
    corrupt(path, "JPEG",
            fmt::format("a Huffman table with {} symbols; at most 256 exist", symbols));
  if (b[t] >> 4 < 2 && (b[t] & 15) < 4)
    slots.defined[b[t] >> 4][b[t] & 15] = true;  // else stb refuses
  return 17 + symbols;
}

// A scan (its SOS marker at `i`) whose components name a Huffman table that no DHT defined
// makes stb 2.27 decode with uninitialised memory. Which tables a scan uses: baseline, both;
// progressive, the DC table in a first DC scan and the AC table in an AC scan.
void check_scan_tables(const Bytes& b, size_t i, bool progressive, const HuffmanSlots& slots,
                       const std::string& path) {
  if (i + 5 > b.size()) return;
  const size_t components = b[i + 4], after = i + 5 + 2 * components;
  if (after + 3 > b.size()) return;  // a cut header, which stb reports
  const bool dc_scan = b[after] == 0, first_pass = (b[after + 2] >> 4) == 0;
  for (size_t c = 0; c < components; ++c) {
    const int dc = b[i + 6 + 2 * c] >> 4, ac = b[i + 6 + 2 * c] & 15;
    const bool uses_dc = !progressive || (dc_scan && first_pass),
               uses_ac = !progressive || !dc_scan;
    if ((uses_dc && dc < 4 && !slots.defined[0][dc]) ||
        (uses_ac && ac < 4 && !slots.defined[1][ac]))
      corrupt(path, "JPEG", "a scan uses a Huffman table that the file does not define");
  }
}

// Walks the marker segments after the SOI (from `i`) as stb does, entropy-coded data included
// (progressive JPEGs define tables between scans), checking every DHT table, every scan's tables
// and the frame size.
void check_jpeg(const Bytes& b, size_t i, const std::string& path) {
  HuffmanSlots slots;
  bool progressive = false;
  while (i + 1 < b.size()) {
    const uint8_t marker = b[i + 1];
    if (b[i] != 0xFF || marker == 0x00 || marker == 0xFF || (marker >= 0xD0 && marker <= 0xD7)) {
      ++i;  // entropy-coded data, a stuffed 0xFF00, fill bytes or a restart marker
      continue;
    }
    if (marker == 0xD9 || i + 3 >= b.size()) return;         // the end, or a cut file stb reports
    const size_t length = size_t{b[i + 2]} << 8 | b[i + 3];  // includes its own two bytes
    const size_t end = std::min(b.size(), i + 2 + length);
    for (size_t t = i + 4; marker == 0xC4 && t < end;) t += check_huffman_table(b, t, slots, path);
    if (marker == 0xDA) check_scan_tables(b, i, progressive, slots, path);
    if ((marker == 0xC0 || marker == 0xC1 || marker == 0xC2) && i + 9 <= b.size()) {
      progressive = marker == 0xC2;
      const uint64_t height = uint64_t{b[i + 5]} << 8 | b[i + 6];
      const uint64_t width = uint64_t{b[i + 7]} << 8 | b[i + 8];
      if (width * height > kMaxJpegPixelsPerByte * b.size() + kSlackBytes)
        corrupt(path, "JPEG",
                fmt::format("{}x{} pixels cannot be coded in {} bytes", width, height, b.size()));
    }
    i += 2 + length;
  }
}

}  // namespace

void check_image_bytes(const std::vector<uint8_t>& bytes, const std::string& path) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (bytes.size() >= 8 && std::equal(kPng, kPng + 8, bytes.begin())) check_png(bytes, path);
  const int64_t soi = jpeg_soi_offset(bytes);
  if (soi >= 0) check_jpeg(bytes, static_cast<size_t>(soi) + 2, path);
}

int64_t jpeg_soi_offset(const std::vector<uint8_t>& bytes) {
  size_t code = 0;  // the marker's code byte follows the last 0xFF
  while (code < bytes.size() && bytes[code] == 0xFF) ++code;
  if (code == 0 || code >= bytes.size() || bytes[code] != 0xD8) return -1;
  return static_cast<int64_t>(code) - 1;
}

}  // namespace vitlab
