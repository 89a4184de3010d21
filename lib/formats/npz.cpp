#include "formats/npz.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "formats/npy.h"

#if VITLAB_HAVE_LIBZIP
#include <zip.h>

#include <fstream>
#endif

namespace vitlab {

const torch::Tensor* NpzFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

#if !VITLAB_HAVE_LIBZIP

bool npz_available() {
  return false;
}

NpzFile read_npz(const std::string& path) {
  throw IoError(fmt::format("{}: built without libzip; .npz import unavailable", path));
}

void write_npz(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>&) {
  throw IoError(fmt::format("{}: built without libzip; .npz export unavailable", path));
}

#else

namespace {

// A JSON-quoted, length-limited rendering of an untrusted entry name for messages.
std::string quoted(const std::string& name) {
  const size_t kMax = 200;
  const std::string s = name.size() > kMax ? name.substr(0, kMax) : name;
  const std::string out =
      nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return name.size() > kMax ? out + "..." : out;
}

std::string libzip_message(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string message = zip_error_strerror(&error);
  zip_error_fini(&error);
  return message;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Deflate cannot expand data by more than about 1032:1, so a larger declared size is a lie (or a
// zip bomb) and is refused before any allocation.
constexpr uint64_t kMaxDeflateRatio = 1032;

struct ZipDiscard {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileClose {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

}  // namespace

bool npz_available() {
  return true;
}

NpzFile read_npz(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw IoError(fmt::format("{}: no such file", path));
  if (!std::filesystem::is_regular_file(path, ec))
    throw IoError(fmt::format("{}: not a regular file", path));
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw IoError(fmt::format("{}: cannot read: {}", path, ec.message()));

  int code = 0;
  std::unique_ptr<zip_t, ZipDiscard> zip(zip_open(path.c_str(), ZIP_RDONLY, &code));
  if (!zip)
    throw IoError(
        fmt::format("{}: not a valid .npz (zip) archive: {}", path, libzip_message(code)));
  const zip_int64_t count = zip_get_num_entries(zip.get(), 0);
  if (count < 0)
    throw IoError(fmt::format("{}: cannot list the archive: {}", path, zip_strerror(zip.get())));

  NpzFile out;
  std::set<std::string> names;
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(zip.get(), zip_uint64_t(i), 0, &st) != 0)
      throw IoError(fmt::format("{}: entry #{}: {}", path, i, zip_strerror(zip.get())));
    const zip_uint64_t needed =
        ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
    if ((st.valid & needed) != needed)
      throw IoError(fmt::format("{}: entry #{}: incomplete directory record", path, i));
    const std::string entry = st.name;
    const std::string where = fmt::format("{}: entry {}", path, quoted(entry));
    if (!ends_with(entry, ".npy"))
      throw IoError(
          fmt::format("{}: not a .npy array (an .npz holds only NAME.npy entries)", where));
    const std::string name = entry.substr(0, entry.size() - 4);
    if (!names.insert(name).second) throw IoError(fmt::format("{}: duplicate entry name", where));
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE)
      throw IoError(fmt::format("{}: encrypted entries are not supported", where));
    if (st.comp_size > file_size)
      throw IoError(fmt::format("{}: compressed size {} exceeds the archive size {} (truncated?)",
                                where, st.comp_size, file_size));
    if (st.comp_method == ZIP_CM_STORE) {
      if (st.size != st.comp_size)
        throw IoError(fmt::format("{}: stored entry declares size {} but compressed size {}", where,
                                  st.size, st.comp_size));
    } else if (st.comp_method == ZIP_CM_DEFLATE) {
      if (st.size / kMaxDeflateRatio > st.comp_size)
        throw IoError(
            fmt::format("{}: declared size {} is impossible for {} deflated bytes "
                        "(corrupt archive or zip bomb)",
                        where, st.size, st.comp_size));
    } else {
      throw IoError(
          fmt::format("{}: compression method {} is not supported (numpy writes stored or "
                      "deflated entries)",
                      where, st.comp_method));
    }

    std::unique_ptr<zip_file_t, ZipFileClose> file(zip_fopen_index(zip.get(), zip_uint64_t(i), 0));
    if (!file) throw IoError(fmt::format("{}: cannot open: {}", where, zip_strerror(zip.get())));
    // libzip checks the CRC when the stream reaches its end, which read_npy always does.
    const NpyReadFn read = [&](void* dst, uint64_t n) -> uint64_t {
      const zip_int64_t got = zip_fread(file.get(), dst, std::min<uint64_t>(n, uint64_t(1) << 30));
      if (got < 0)
        throw IoError(fmt::format("{}: read failed: {}", where, zip_file_strerror(file.get())));
      return uint64_t(got);
    };
    out.tensors.emplace_back(name, read_npy(read, st.size, where));
  }
  return out;
}

void write_npz(const std::string& path,
               const std::vector<std::pair<std::string, torch::Tensor>>& arrays) {
  std::vector<std::pair<std::string, std::string>> entries;  // (entry name, .npy bytes)
  std::set<std::string> names;
  for (const auto& [name, tensor] : arrays) {
    const std::string where = fmt::format("{}: cannot write array {}", path, quoted(name));
    if (name.empty()) throw IoError(fmt::format("{}: empty name", where));
    if (!names.insert(name).second) throw IoError(fmt::format("{}: duplicate name", where));
    entries.emplace_back(name + ".npy", encode_npy(tensor, where));
  }
  write_atomic_with(path, [&](const std::string& tmp) {
    if (entries.empty()) {
      // libzip deletes an archive left with no entries; write the 22-byte empty zip by hand.
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f.write("PK\x05\x06", 4);
      for (int i = 0; i < 18; ++i) f.put('\0');
      f.flush();
      if (!f) throw IoError(fmt::format("{}: write failed", path));
      return;
    }
    int code = 0;
    zip_t* zip = zip_open(tmp.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
    if (!zip)
      throw IoError(fmt::format("{}: cannot create archive: {}", path, libzip_message(code)));
    const auto fail = [&](const std::string& what) {
      const std::string message = fmt::format("{}: {}: {}", path, what, zip_strerror(zip));
      zip_discard(zip);
      throw IoError(message);
    };
    for (const auto& [entry, bytes] : entries) {
      // The buffers outlive zip_close, which is when libzip reads them.
      zip_source_t* source = zip_source_buffer(zip, bytes.data(), bytes.size(), 0);
      if (!source) fail(fmt::format("cannot add {}", quoted(entry)));
      const zip_int64_t index = zip_file_add(zip, entry.c_str(), source, ZIP_FL_ENC_UTF_8);
      if (index < 0) {
        zip_source_free(source);
        fail(fmt::format("cannot add {}", quoted(entry)));
      }
      if (zip_set_file_compression(zip, zip_uint64_t(index), ZIP_CM_STORE, 0) != 0)
        fail(fmt::format("cannot store {}", quoted(entry)));
    }
    if (zip_close(zip) != 0) fail("cannot write archive");
  });
}

#endif  // VITLAB_HAVE_LIBZIP

}  // namespace vitlab
