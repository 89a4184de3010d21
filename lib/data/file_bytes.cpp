#include "data/file_bytes.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace vitlab {
namespace {

namespace fs = std::filesystem;

// Deflate cannot compress better than about 1032:1, so a gzip file of n bytes inflates to at
// most ~1032 n bytes (plus headers); anything claiming more is corrupt or a bomb.
constexpr uint64_t kMaxDeflateRatio = 1032;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool has_gzip_magic(const uint8_t* data, size_t size) {
  return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

std::vector<uint8_t> read_raw(const std::string& path, uint64_t max_bytes) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) fail<DataError>("{}: file not found", path);
  if (!fs::is_regular_file(status)) fail<DataError>("{}: not a regular file", path);
  const uint64_t size = fs::file_size(path, ec);
  if (ec) fail<DataError>("{}: cannot read the file size: {}", path, ec.message());
  if (size > max_bytes)
    fail<DataError>("{}: file is {} bytes, more than the {} accepted", path, size, max_bytes);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<DataError>("{}: cannot open: {}", path, std::strerror(errno));
  std::vector<uint8_t> bytes(size);
  if (size > 0 &&
      !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size)))
    fail<DataError>("{}: read error after {} of {} bytes", path, in.gcount(), size);
  return bytes;
}

// Inflates every gzip member of `packed`; the output grows as data arrives, so a lying size
// field never makes us allocate more than the data really inflates to (bounded by `cap`).
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& packed, const std::string& path,
                            uint64_t max_bytes) {
  const uint64_t cap = std::min<uint64_t>(max_bytes, packed.size() * kMaxDeflateRatio + 4096);
  // The trailer's ISIZE (size mod 2^32 of the last member) is a good first guess for one member.
  uint64_t guess = 0;
  if (packed.size() >= 18) {
    const uint8_t* t = packed.data() + packed.size() - 4;
    guess = uint64_t{t[0]} | uint64_t{t[1]} << 8 | uint64_t{t[2]} << 16 | uint64_t{t[3]} << 24;
  }
  std::vector<uint8_t> out(std::max<uint64_t>(1024, std::min(guess + 1, cap)));

  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)  // 16+: gzip wrapper only, checks the CRC
    fail<DataError>("{}: zlib initialisation failed", path);
  struct Closer {
    z_stream* zs;
    ~Closer() { inflateEnd(zs); }
  } closer{&zs};

  size_t in_pos = 0;
  uint64_t out_pos = 0;
  while (true) {
    zs.next_in = const_cast<Bytef*>(packed.data() + in_pos);
    const size_t in_chunk = std::min<size_t>(packed.size() - in_pos, 1u << 30);
    zs.avail_in = static_cast<uInt>(in_chunk);
    if (out_pos == out.size()) {
      if (out.size() >= cap)
        fail<DataError>("{}: decompresses to more than {} bytes (corrupt or not a data file)", path,
                        cap);
      out.resize(std::min<uint64_t>(cap, out.size() * 2));
    }
    zs.next_out = out.data() + out_pos;
    const uint64_t out_chunk = std::min<uint64_t>(out.size() - out_pos, 1u << 30);
    zs.avail_out = static_cast<uInt>(out_chunk);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    in_pos += in_chunk - zs.avail_in;
    out_pos += out_chunk - zs.avail_out;
    if (rc == Z_STREAM_END) {
      // Another member may follow (concatenated gzip); trailing zero padding is tolerated.
      const bool rest_is_padding = std::all_of(packed.begin() + static_cast<ptrdiff_t>(in_pos),
                                               packed.end(), [](uint8_t b) { return b == 0; });
      if (rest_is_padding) break;
      if (!has_gzip_magic(packed.data() + in_pos, packed.size() - in_pos))
        fail<DataError>("{}: corrupt gzip data: unexpected bytes after the compressed stream",
                        path);
      inflateReset(&zs);
      continue;
    }
    if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT)
      fail<DataError>("{}: corrupt gzip data: {}", path, zs.msg ? zs.msg : "invalid stream");
    if (rc == Z_MEM_ERROR) fail<DataError>("{}: out of memory while decompressing", path);
    if (rc == Z_BUF_ERROR && in_pos == packed.size() && zs.avail_out > 0)
      fail<DataError>("{}: truncated gzip data (the file ends before the compressed stream does)",
                      path);
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      fail<DataError>("{}: gzip error {}: {}", path, rc, zs.msg ? zs.msg : "unknown");
    if (in_pos == packed.size() && zs.avail_out > 0 && rc == Z_OK) {
      // All input consumed, output space left, stream not finished: the file is cut short.
      fail<DataError>("{}: truncated gzip data (the file ends before the compressed stream does)",
                      path);
    }
  }
  out.resize(out_pos);
  out.shrink_to_fit();
  return out;
}

}  // namespace

std::vector<uint8_t> read_data_file(const std::string& path, uint64_t max_bytes) {
  std::vector<uint8_t> bytes = read_raw(path, max_bytes);
  const bool gzip = has_gzip_magic(bytes.data(), bytes.size());
  if (!gzip && ends_with(path, ".gz"))
    fail<DataError>(
        "{}: not a gzip file (the name ends in .gz but the gzip magic bytes are missing)", path);
  if (!gzip) return bytes;
  return gunzip(bytes, path, max_bytes);
}

std::string find_first_existing(const std::string& folder, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    const fs::path candidate = fs::path(folder) / name;
    std::error_code ec;
    if (fs::exists(candidate, ec)) return candidate.string();
  }
  return "";
}

void require_folder(const std::string& folder, const std::string& what, const std::string& hint) {
  std::error_code ec;
  if (fs::is_directory(folder, ec)) return;
  const std::string suffix = hint.empty() ? "" : "; " + hint;
  if (fs::exists(folder, ec)) fail<DataError>("{}: {} is not a folder{}", folder, what, suffix);
  fail<DataError>("{}: {} folder not found{}", folder, what, suffix);
}

}  // namespace vitlab
