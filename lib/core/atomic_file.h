// Files that are either complete or absent: write to a temporary file in the same folder, flush
// to disk, then rename over the target. A crash never leaves a half-written result behind.
#pragma once
#include <functional>
#include <string>

namespace vitlab {

// Writes `content` to `path` atomically. Throws IoError naming the path on failure.
void write_file_atomic(const std::string& path, const std::string& content);

// Calls `writer` with a temporary path beside `path`, then fsyncs and renames it over `path`.
// The temporary file is removed if `writer` throws.
void write_atomic_with(const std::string& path, const std::function<void(const std::string&)>& writer);

// Creates `dir` (and parents) and checks that a file can be written in it; IoError otherwise.
void ensure_writable_dir(const std::string& dir);

// Reads a whole file; IoError naming the path if it cannot.
std::string read_file(const std::string& path);

}  // namespace vitlab
