// What the fuzz targets share: a private scratch folder per process (two fuzzers may run at once)
// and writing an input to where a file-reading parser expects its file. The parsers are tested
// through the same entry points the program uses, files included, so that their own file checks
// are fuzzed too.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace vitlab::fuzz {

// Removed at a normal exit; a crash leaves it for the post-mortem. Never destroyed, so that the
// exit handler that removes it can still read its name.
inline const std::string& scratch_dir() {
  static const std::string* dir = [] {
    std::string path = (std::filesystem::temp_directory_path() / "vitlab-fuzz-XXXXXX").string();
    if (!mkdtemp(path.data())) std::abort();
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return new std::string(path);
  }();
  return *dir;
}

// Writes `bytes` to `name` (a path relative to the scratch folder, parents created) and returns
// the full path. A write failure aborts: it is the harness's fault, not the parser's.
inline std::string write_file(const std::string& name, const std::string& bytes) {
  const std::filesystem::path path = std::filesystem::path(scratch_dir()) / name;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) std::abort();
  return path.string();
}

inline std::string as_string(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// `text` cut at every `separator` (a text without one is a single piece).
inline std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

// One thread: the fuzzers measure the parsers, and a thread pool's lazy start would count as
// a leak or a slow first input.
inline void quiet_torch() {
  torch::set_num_threads(1);
}

}  // namespace vitlab::fuzz
