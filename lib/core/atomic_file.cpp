#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"

namespace vitlab {
namespace fs = std::filesystem;

namespace {
std::string temp_name_for(const std::string& path) {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^ uint64_t(::getpid()));
  return fmt::format("{}.tmp-{}-{:x}", path, ::getpid(), rng() & 0xffffff);
}

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}
}  // namespace

void write_atomic_with(const std::string& path,
                       const std::function<void(const std::string&)>& writer) {
  const fs::path target(path);
  if (target.has_parent_path() && !fs::exists(target.parent_path())) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) throw IoError(fmt::format("{}: cannot create folder: {}", target.parent_path().string(), ec.message()));
  }
  const std::string tmp = temp_name_for(path);
  try {
    writer(tmp);
    fsync_path(tmp);
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      throw IoError(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
    if (target.has_parent_path()) fsync_path(target.parent_path().string());
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

void write_file_atomic(const std::string& path, const std::string& content) {
  write_atomic_with(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) throw IoError(fmt::format("{}: write failed (disk full?)", path));
  });
}

void ensure_writable_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw IoError(fmt::format("{}: cannot create output folder: {}", dir,
                              ec ? ec.message() : "a file of that name exists"));
  const std::string probe = (fs::path(dir) / fmt::format(".write-test-{}", ::getpid())).string();
  std::ofstream out(probe);
  if (!out) throw IoError(fmt::format("{}: output folder is not writable", dir));
  out.close();
  fs::remove(probe, ec);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!fs::exists(path)) throw IoError(fmt::format("{}: no such file", path));
    throw IoError(fmt::format("{}: cannot be read", path));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace vitlab
