// Reading whole data files, raw or gzip-compressed, with every failure a DataError naming the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vitlab {

// The largest decompressed data file we accept (a guard against hostile headers and zip bombs).
constexpr uint64_t kMaxDataFileBytes = uint64_t{4} << 30;

// The bytes of `path`; gzip data (by its magic bytes) is decompressed through zlib. A name ending
// in ".gz" must hold gzip data. Throws DataError naming `path` when the file is missing,
// unreadable, a truncated or corrupt gzip stream, or larger than `max_bytes` once decompressed.
std::vector<uint8_t> read_data_file(const std::string& path,
                                    uint64_t max_bytes = kMaxDataFileBytes);

// The first of `folder`/name for name in `names` that exists, or "" if none does.
std::string find_first_existing(const std::string& folder, const std::vector<std::string>& names);

// Throws DataError if `folder` is not a directory. `hint` (e.g. which package to install) is
// appended to the message when not empty.
void require_folder(const std::string& folder, const std::string& what, const std::string& hint);

}  // namespace vitlab
