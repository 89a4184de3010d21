#include "formats/torch_archive.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "formats/little_endian.h"

namespace vitlab {
namespace {

// Record signatures and fixed sizes, PKWARE APPNOTE 6.3 sections 4.3.7 to 4.3.16.
constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50, kLocator64Sig = 0x07064b50;
constexpr size_t kLocalBytes = 30, kCentralBytes = 46, kEndBytes = 22, kLocator64Bytes = 20;
constexpr size_t kEnd64Bytes = 56, kMaxComment = 65535;

// The file, read by position; every read is checked against its size first.
class ArchiveFile {
 public:
  explicit ArchiveFile(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw IoError(fmt::format("{}: cannot open for reading", path));
    in_.seekg(0, std::ios::end);
    size_ = static_cast<uint64_t>(in_.tellg());
  }
  uint64_t size() const { return size_; }

  // What every complaint about this file starts with.
  std::string invalid() const {
    return path_ + ": not a valid LibTorch archive (corrupt or truncated?)";
  }
  [[noreturn]] void bad(const std::string& what) const { throw IoError(invalid() + ": " + what); }

  std::vector<unsigned char> read(uint64_t offset, uint64_t bytes, const char* what) {
    if (offset > size_ || bytes > size_ - offset)
      bad(fmt::format("{} ({} bytes at offset {}) lies past the end of the {}-byte file", what,
                      bytes, offset, size_));
    std::vector<unsigned char> out(bytes);
    in_.seekg(static_cast<std::streamoff>(offset));
    if (!in_.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(bytes)))
      throw IoError(fmt::format("{}: cannot read {} bytes at offset {}", path_, bytes, offset));
    return out;
  }

  // Streams `packed` bytes at `offset` (checked to lie inside the file) through `take`, in 1 MiB
  // pieces.
  template <typename Take>
  void stream(uint64_t offset, uint64_t packed, Take take) {
    std::vector<unsigned char> piece(std::min<uint64_t>(packed, 1 << 20));
    in_.seekg(static_cast<std::streamoff>(offset));
    while (packed > 0) {
      const uint64_t n = std::min<uint64_t>(packed, piece.size());
      if (!in_.read(reinterpret_cast<char*>(piece.data()), static_cast<std::streamsize>(n)))
        throw IoError(fmt::format("{}: cannot read {} bytes at offset {}", path_, n, offset));
      take(piece.data(), n);
      packed -= n;
    }
  }

 private:
  std::string path_;
  std::ifstream in_;
  uint64_t size_ = 0;
};

struct Directory {
  uint64_t entries = 0, offset = 0, bytes = 0;
};

// The end-of-central-directory record: the last signature in the file's final 64 kB + 22 bytes
// whose comment length reaches exactly to the end. Zip64 when a field is saturated.
Directory find_directory(ArchiveFile& file) {
  if (file.size() < kEndBytes) file.bad("shorter than a zip end record");
  const uint64_t tail = std::min<uint64_t>(file.size(), kEndBytes + kMaxComment);
  const auto bytes = file.read(file.size() - tail, tail, "the zip end record");
  for (uint64_t i = tail - kEndBytes + 1; i-- > 0;) {
    const unsigned char* p = bytes.data() + i;
    if (read_le(p, 4) != kEndSig || i + kEndBytes + read_le(p + 20, 2) != tail) continue;
    // The entry counts of this disk and in all agree (one disk), and the directory ends where
    // the end record starts, as every writer lays them out.
    Directory d{read_le(p + 10, 2), read_le(p + 16, 4), read_le(p + 12, 4)};
    if (read_le(p + 4, 2) != 0 || read_le(p + 6, 2) != 0 || read_le(p + 8, 2) != d.entries)
      file.bad("a multi-disk zip (or a broken end record)");
    // LibTorch's writer (miniz) always adds a zip64 end record and its locator; their values
    // replace the saturated fields.
    uint64_t end_at = file.size() - tail + i;
    const bool saturated = d.entries == 0xffff || d.offset == 0xffffffff || d.bytes == 0xffffffff;
    const auto loc = end_at >= kLocator64Bytes
                         ? file.read(end_at - kLocator64Bytes, kLocator64Bytes, "the zip64 locator")
                         : std::vector<unsigned char>();
    const bool has_zip64 = !loc.empty() && read_le(loc.data(), 4) == kLocator64Sig;
    if (saturated && !has_zip64) file.bad("a zip64 end record without its locator");
    if (has_zip64) {
      end_at = read_le(loc.data() + 8, 8);
      const auto end64 = file.read(end_at, kEnd64Bytes, "the zip64 end record");
      if (read_le(end64.data(), 4) != kEnd64Sig)
        file.bad("the zip64 locator points at no zip64 end record");
      if (read_le(end64.data() + 24, 8) != read_le(end64.data() + 32, 8))
        file.bad("a multi-disk zip (or a broken zip64 end record)");
      if (saturated)
        d = Directory{read_le(end64.data() + 32, 8), read_le(end64.data() + 48, 8),
                      read_le(end64.data() + 40, 8)};
    }
    if (d.entries == 0) file.bad("no entries");
    if (d.offset > end_at || d.bytes != end_at - d.offset)
      file.bad(
          fmt::format("the central directory ({} bytes at {}) does not end at the end record ({})",
                      d.bytes, d.offset, end_at));
    return d;
  }
  file.bad("no zip end record");
}

struct Entry {
  std::string name;
  uint64_t method = 0, crc = 0, packed = 0, size = 0, local = 0;
};

// Zip64's extended-information extra field (id 1) holds, in this order, each 32-bit field that
// is saturated: size, packed size, local header offset.
void apply_zip64(const unsigned char* extra, uint64_t length, Entry& e, ArchiveFile& file) {
  for (uint64_t at = 0; at + 4 <= length;) {
    const uint64_t id = read_le(extra + at, 2), n = read_le(extra + at + 2, 2);
    if (at + 4 + n > length)
      file.bad(fmt::format("entry \"{}\": an extra field past its end", e.name));
    if (id == 1) {
      uint64_t* fields[] = {&e.size, &e.packed, &e.local};
      uint64_t used = 0;
      for (uint64_t* f : fields) {
        if (*f != 0xffffffff) continue;
        if (used + 8 > n) file.bad(fmt::format("entry \"{}\": a short zip64 field", e.name));
        *f = read_le(extra + at + 4 + used, 8);
        used += 8;
      }
    }
    at += 4 + n;
  }
}

std::vector<Entry> read_directory(ArchiveFile& file, const Directory& d) {
  if (d.entries > d.bytes / kCentralBytes)
    file.bad("more directory entries than fit the directory");
  const auto dir = file.read(d.offset, d.bytes, "the central directory");
  std::vector<Entry> entries;
  uint64_t at = 0;
  for (uint64_t i = 0; i < d.entries; ++i) {
    if (d.bytes - at < kCentralBytes || read_le(dir.data() + at, 4) != kCentralSig)
      file.bad(fmt::format("directory entry {} is not one", i));
    const unsigned char* p = dir.data() + at;
    const uint64_t name = read_le(p + 28, 2), extra = read_le(p + 30, 2),
                   comment = read_le(p + 32, 2);
    if (d.bytes - at - kCentralBytes < name + extra + comment)
      file.bad(fmt::format("directory entry {} runs past the directory", i));
    Entry e{std::string(reinterpret_cast<const char*>(p + kCentralBytes), name),
            read_le(p + 10, 2),
            read_le(p + 16, 4),
            read_le(p + 20, 4),
            read_le(p + 24, 4),
            read_le(p + 42, 4)};
    apply_zip64(p + kCentralBytes + name, extra, e, file);
    entries.push_back(std::move(e));
    at += kCentralBytes + name + extra + comment;
  }
  if (at != d.bytes)
    file.bad(fmt::format("{} bytes after the directory's {} entries", d.bytes - at, d.entries));
  return entries;
}

// An entry's content: its stored bytes, or what its deflated bytes inflate to (LibTorch deflates
// the TorchScript sources it adds). Fails unless exactly the declared size comes out with the
// declared CRC-32, so nothing read later allocates more than the directory said. Keeps the
// bytes in `out` when given.
void check_content(ArchiveFile& file, const Entry& e, uint64_t data, std::string* out) {
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t produced = 0;
  auto emit = [&](const unsigned char* bytes, uint64_t n) {
    produced += n;
    if (produced > e.size)
      file.bad(fmt::format("entry \"{}\" holds more than its {} bytes", e.name, e.size));
    crc = crc32(crc, bytes, static_cast<uInt>(n));
    if (out != nullptr) out->append(reinterpret_cast<const char*>(bytes), n);
  };
  if (e.method == 0) {
    if (e.packed != e.size) file.bad(fmt::format("entry \"{}\": stored with two sizes", e.name));
    file.stream(data, e.size, emit);
  } else {
    // Ended however this block is left: `emit` throws when the data inflates past its size.
    struct Inflater {
      z_stream z{};
      bool open = false;
      ~Inflater() {
        if (open) inflateEnd(&z);
      }
    } inflater;
    z_stream& z = inflater.z;
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) throw IoError("zlib initialisation failed");
    inflater.open = true;
    std::vector<unsigned char> window(1 << 16);
    int rc = Z_OK;
    file.stream(data, e.packed, [&](const unsigned char* bytes, uint64_t n) {
      z.next_in = const_cast<unsigned char*>(bytes);
      z.avail_in = static_cast<uInt>(n);
      // Until this piece is used up and the window was not filled (else output may be pending).
      while (rc == Z_OK) {
        z.next_out = window.data();
        z.avail_out = static_cast<uInt>(window.size());
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc == Z_BUF_ERROR) {  // no progress possible: it needs the next piece
          rc = Z_OK;
          break;
        }
        if (rc != Z_OK && rc != Z_STREAM_END) break;
        emit(window.data(), window.size() - z.avail_out);
        if (z.avail_in == 0 && z.avail_out > 0) break;
      }
    });
    if (rc != Z_STREAM_END) file.bad(fmt::format("entry \"{}\": corrupt deflate data", e.name));
  }
  if (produced != e.size)
    file.bad(
        fmt::format("entry \"{}\" holds {} bytes, not the {} declared", e.name, produced, e.size));
  if (static_cast<uint32_t>(crc) != e.crc)
    file.bad(fmt::format("entry \"{}\": CRC-32 mismatch", e.name));
}

// Where an entry's data starts, after its local header; the data must end before the directory.
uint64_t check_local(ArchiveFile& file, const Entry& e, uint64_t directory_offset) {
  const auto h =
      file.read(e.local, kLocalBytes, fmt::format("entry \"{}\"'s header", e.name).c_str());
  if (read_le(h.data(), 4) != kLocalSig)
    file.bad(fmt::format("entry \"{}\" has no local header", e.name));
  const uint64_t name = read_le(h.data() + 26, 2), extra = read_le(h.data() + 28, 2);
  const auto stored = file.read(e.local + kLocalBytes, name, "an entry name");
  if (std::string(stored.begin(), stored.end()) != e.name)
    file.bad(fmt::format("entry \"{}\": local and directory names differ", e.name));
  const uint64_t data = e.local + kLocalBytes + name + extra;
  if (data > directory_offset || e.packed > directory_offset - data)
    file.bad(
        fmt::format("entry \"{}\" ({} bytes) overruns the central directory", e.name, e.packed));
  return data;
}

}  // namespace

void check_torch_archive(const std::string& path) {
  ArchiveFile file(path);
  const Directory directory = find_directory(file);
  for (const Entry& e : read_directory(file, directory)) {
    if (e.method != 0 && e.method != 8)
      file.bad(fmt::format("entry \"{}\" uses compression method {}", e.name, e.method));
    const uint64_t data = check_local(file, e, directory.offset);
    // data.pkl, constants.pkl and TorchScript's code/*.debug_pkl.
    const bool pickle = e.name.size() >= 4 && (e.name.compare(e.name.size() - 4, 4, ".pkl") == 0 ||
                                               e.name.compare(e.name.size() - 4, 4, "_pkl") == 0);
    std::string bytes;
    check_content(file, e, data, pickle ? &bytes : nullptr);
    if (pickle) check_pickle(bytes, fmt::format("{}: pickle \"{}\"", file.invalid(), e.name));
  }
}

}  // namespace vitlab
