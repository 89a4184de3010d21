// Files that are either complete or absent: write to a temporary file in the same folder, flush
// to disk, then rename over the target. A crash never leaves a half-written result behind.
#pragma once
#include <functional>
#include <string>

namespace torch::serialize {
class OutputArchive;
}

namespace vitlab {

// Writes into `file` (e.g. write_atomic_with's temporary file) the bytes `produce` hands to the
// sink it is given. A failed write (a full disk) is remembered, the rest is dropped, and IoError
// naming `name` is thrown once `produce` returns: producers that cannot survive a failing sink
// (LibTorch's archive writer ends the program when its file fails) never see one.
using ByteSink = std::function<void(const void* data, size_t size)>;
void write_through_sink(const std::string& file, const std::string& name,
                        const std::function<void(const ByteSink&)>& produce);

// Writes a LibTorch archive to `path` atomically, through write_through_sink: LibTorch's own file
// writer ends the program when a write fails (its destructor throws), a full disk included.
void write_archive_atomic(const std::string& path, torch::serialize::OutputArchive& archive);

// Writes `content` to `path` atomically. Throws IoError naming the path on failure.
void write_file_atomic(const std::string& path, const std::string& content);

// Calls `writer` with a temporary path beside `path`, then fsyncs and renames it over `path`.
// The temporary file is removed if `writer` throws.
void write_atomic_with(const std::string& path, const std::function<void(const std::string&)>& writer);

// Removes the temporary files that writers killed mid-write left in `dir` (not its subfolders);
// returns how many. Only for a folder no other process is writing.
int remove_write_leftovers(const std::string& dir);

// Creates `dir` (and parents) and checks that a file can be written in it; IoError otherwise.
void ensure_writable_dir(const std::string& dir);

// Reads a whole file; IoError naming the path if it cannot.
std::string read_file(const std::string& path);

}  // namespace vitlab
