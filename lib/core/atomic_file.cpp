#include "core/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <c10/util/Exception.h>
#include <torch/serialize/output-archive.h>

#include "core/error.h"

namespace vitlab {
namespace fs = std::filesystem;

namespace {
std::string temp_name_for(const std::string& path) {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^ uint64_t(::getpid()));
  return fmt::format("{}.tmp-{}-{:x}", path, ::getpid(), rng() & 0xffffff);
}

// Tests stand for a process killed while it writes: VITLAB_TEST_KILL_WRITE="<suffix>:<bytes>"
// keeps the first <bytes> bytes of the temporary file of a path ending in <suffix>, then kills
// this process with SIGKILL, as `kill -9` at that byte would. Unset in normal use.
void maybe_killed_while_writing(const std::string& path, const std::string& tmp) {
  const char* spec = std::getenv("VITLAB_TEST_KILL_WRITE");
  if (!spec) return;
  const std::string text(spec);
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return;
  const std::string suffix = text.substr(0, colon);
  if (path.size() < suffix.size() || path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0) return;
  std::error_code ec;
  const auto size = fs::file_size(tmp, ec);
  const auto keep = std::min<std::uintmax_t>(std::strtoull(text.c_str() + colon + 1, nullptr, 10), ec ? 0 : size);
  if (::truncate(tmp.c_str(), off_t(keep)) != 0) std::abort();
  ::kill(::getpid(), SIGKILL);
}

// What a failed write says: the writer's reason, and the likely cause when the disk is full or
// the file is over the size limit (ENOSPC, EFBIG).
std::string write_failure(const std::string& path, const std::string& reason, int error) {
  const bool full = error == ENOSPC || error == EFBIG || error == EDQUOT;
  const std::string cause = reason == std::strerror(error) ? "" : fmt::format("{}: ", std::strerror(error));
  return fmt::format("{}: cannot write: {}{}", path, reason, full ? " (" + cause + "is the disk full?)" : "");
}

// Whether the data reached the disk: some file systems (NFS, quotas) report a full disk only here.
bool fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  return ::close(fd) == 0 && ok;
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
    try {
      errno = 0;
      writer(tmp);
    } catch (const IoError&) {
      throw;
    } catch (const c10::Error& e) {  // LibTorch's archive writer: "file write failed"
      throw IoError(write_failure(path, e.what_without_backtrace(), errno));
    } catch (const std::exception& e) {
      throw IoError(write_failure(path, e.what(), errno));
    }
    maybe_killed_while_writing(path, tmp);
    if (!fsync_path(tmp)) throw IoError(write_failure(path, std::strerror(errno), errno));
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      throw IoError(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
    if (target.has_parent_path()) fsync_path(target.parent_path().string());
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

void write_through_sink(const std::string& file, const std::string& name,
                        const std::function<void(const ByteSink&)>& produce) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(write_failure(name, std::strerror(errno), errno));
  int error = 0;
  produce([&](const void* data, size_t size) {
    const char* bytes = static_cast<const char*>(data);
    while (size > 0 && error == 0) {
      const ssize_t n = ::write(fd, bytes, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error = n < 0 ? errno : EIO;
        break;
      }
      bytes += n;
      size -= size_t(n);
    }
  });
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) throw IoError(write_failure(name, std::strerror(error), error));
}

void write_archive_atomic(const std::string& path, torch::serialize::OutputArchive& archive) {
  write_atomic_with(path, [&](const std::string& tmp) {
    write_through_sink(tmp, path, [&](const ByteSink& sink) {
      archive.save_to([&](const void* data, size_t size) {
        sink(data, size);
        return size;  // a failed write is the sink's to report, after the archive is done
      });
    });
  });
}

void write_file_atomic(const std::string& path, const std::string& content) {
  write_atomic_with(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) throw IoError(write_failure(path, "the write failed", errno));
  });
}

int remove_write_leftovers(const std::string& dir) {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const auto at = name.rfind(".tmp-");  // temp_name_for: <name>.tmp-<pid>-<hex>
    if (at == std::string::npos || at == 0 || !entry.is_regular_file(ec)) continue;
    const std::string tail = name.substr(at + 5);
    const auto dash = tail.find('-');
    if (dash == std::string::npos || dash == 0 ||
        tail.find_first_not_of("0123456789") != dash ||
        tail.find_first_not_of("0123456789abcdef", dash + 1) != std::string::npos)
      continue;
    removed += fs::remove(entry.path(), ec) ? 1 : 0;
  }
  return removed;
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
