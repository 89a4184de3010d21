#include "data/file_listing.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/file_bytes.h"
#include "data/tar_shards.h"

namespace vitlab {
namespace {

namespace fs = std::filesystem;
constexpr const char* kHeader = "vitlab-file-listing 1";
constexpr const char* kShardHeader = "vitlab-file-listing 2";
constexpr int64_t kProgressEvery = 5000;

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

// Sorted names of `dir`'s entries that are folders (`folders`) or image files.
std::vector<std::string> sorted_names(const fs::path& dir, bool folders) {
  return sorted_entry_names(dir.string(), [folders](const fs::directory_entry& e) {
    std::error_code ec;
    return folders ? e.is_directory(ec) : (e.is_regular_file(ec) && is_image_name(e.path()));
  });
}

}  // namespace

std::vector<std::string> sorted_entry_names(
    const std::string& dir, const std::function<bool(const fs::directory_entry&)>& keep) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (keep(*it)) out.push_back(it->path().filename().string());
  if (ec) fail<DataError>("{}: cannot list the folder: {}", dir, ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

FileListing list_image_split(const std::string& root, const std::string& split,
                             const std::vector<std::string>* classes,
                             const std::function<void(int64_t)>& progress) {
  const fs::path split_dir = fs::path(root) / split;
  require_folder(split_dir.string(), "image-folder split",
                 "an image folder holds " + split + "/<class>/*.jpg|jpeg|png or " + split +
                     "/*.tar (WebDataset shards)");
  if (is_shard_split(split_dir.string())) return list_shard_split(root, split, classes, progress);
  FileListing l;
  l.root = root;
  l.split = split;
  const auto class_dirs = sorted_names(split_dir, /*folders=*/true);
  if (class_dirs.empty())
    fail<DataError>("{}: no class sub-folders (expected {}/<class>/*.jpg|jpeg|png)",
                    split_dir.string(), split_dir.string());
  l.class_names = classes ? *classes : class_dirs;
  for (const auto& name : class_dirs) {
    const auto it = std::find(l.class_names.begin(), l.class_names.end(), name);
    if (it == l.class_names.end())
      fail<DataError>("{}: class \"{}\" has no folder in the training split",
                      (split_dir / name).string(), name);
    const auto label = static_cast<int32_t>(it - l.class_names.begin());
    const auto images = sorted_names(split_dir / name, /*folders=*/false);
    if (images.empty()) l.empty_classes.push_back(name);
    for (const auto& image : images) {
      l.files.push_back(split + "/" + name + "/" + image);
      l.labels.push_back(label);
      if (progress && l.size() % kProgressEvery == 0) progress(l.size());
    }
  }
  if (l.files.empty())
    fail<DataError>("{}: no .jpg, .jpeg or .png images in any class folder", split_dir.string());
  if (progress) progress(l.size());
  return l;
}

std::function<void(int64_t)> listing_progress(const std::string& root, const std::string& split,
                                              std::function<void(const std::string&)> note) {
  return [root, split, note = std::move(note)](int64_t n) {
    if (note) note("listing " + root + "/" + split + ": " + std::to_string(n) + " files");
  };
}

std::vector<uint8_t> FileListing::read(int64_t i, uint64_t max_bytes) const {
  if (!sharded()) return read_data_file(path(i), max_bytes);
  const auto k = static_cast<size_t>(i);
  if (uint64_t(sizes[k]) > max_bytes)
    fail<DataError>("{}: {} bytes, more than the {} accepted", path(i), sizes[k], max_bytes);
  std::ifstream in(root + "/" + files[k], std::ios::binary);
  std::vector<uint8_t> bytes(static_cast<size_t>(sizes[k]));
  if (!in || !in.seekg(offsets[k]) ||
      !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size())))
    fail<DataError>("{}: cannot read its {} bytes at byte {} of the shard (changed since it was "
                    "listed?)", path(i), sizes[k], offsets[k]);
  return bytes;
}

FileListing FileListing::select(const std::vector<int64_t>& rows) const {
  FileListing out;
  out.root = root;
  out.split = split;
  out.class_names = class_names;
  out.empty_classes = empty_classes;
  for (const int64_t row : rows) {
    const auto k = static_cast<size_t>(row);
    out.files.push_back(files[k]);
    out.labels.push_back(labels[k]);
    if (!sharded()) continue;
    out.members.push_back(members[k]);
    out.offsets.push_back(offsets[k]);
    out.sizes.push_back(sizes[k]);
  }
  return out;
}

void save_listing(const FileListing& l, const std::string& path) {
  std::ostringstream out;
  out << (l.sharded() ? kShardHeader : kHeader) << '\n' << l.root << '\n' << l.split << '\n'
      << l.class_names.size() << '\n';
  for (const auto& name : l.class_names) out << name << '\n';
  for (size_t i = 0; i < l.files.size(); ++i) {
    out << l.labels[i] << '\t' << l.files[i];
    if (l.sharded()) out << '\t' << l.members[i] << '\t' << l.offsets[i] << '\t' << l.sizes[i];
    out << '\n';
  }
  write_file_atomic(path, out.str());
}

FileListing load_listing(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail<DataError>("{}: cannot open the file listing", path);
  std::string line;
  int64_t number = 0;
  const auto next = [&](const char* what) {
    if (!std::getline(in, line))
      fail<DataError>("{}: line {}: ends before the {}", path, number + 1, what);
    ++number;
    return line;
  };
  const bool sharded = next("header") == kShardHeader;
  if (line != kHeader && !sharded)
    fail<DataError>("{}: not a vitlab file listing (first line \"{}\", expected \"{}\" or \"{}\")",
                    path, line, kHeader, kShardHeader);
  FileListing l;
  l.root = next("root folder");
  l.split = next("split");
  const std::string count_text = next("class count");
  int64_t classes = -1;
  try {
    classes = std::stoll(count_text);
  } catch (const std::exception&) {
  }
  if (classes <= 0 || classes > (int64_t{1} << 24))
    fail<DataError>("{}: line {}: \"{}\" is not a class count", path, number, count_text);
  for (int64_t c = 0; c < classes; ++c) l.class_names.push_back(next("class names"));
  while (std::getline(in, line)) {
    ++number;
    const auto tab = line.find('\t');
    int64_t label = -1;
    try {
      if (tab != std::string::npos && tab > 0) label = std::stoll(line.substr(0, tab));
    } catch (const std::exception&) {
    }
    if (label < 0 || label >= classes || tab + 1 >= line.size())
      fail<DataError>("{}: line {}: expected \"<label 0..{}>\\t<path>{}\"", path, number,
                      classes - 1, sharded ? "\\t<member>\\t<offset>\\t<size>" : "");
    l.labels.push_back(static_cast<int32_t>(label));
    if (!sharded) {
      l.files.push_back(line.substr(tab + 1));
      continue;
    }
    std::vector<std::string> parts;
    std::istringstream fields(line.substr(tab + 1));
    for (std::string part; std::getline(fields, part, '\t');) parts.push_back(part);
    int64_t offset = -1, size = -1;
    try {
      if (parts.size() == 4) offset = std::stoll(parts[2]), size = std::stoll(parts[3]);
    } catch (const std::exception&) {
    }
    if (offset < 0 || size < 0 || parts[0].empty() || parts[1].empty())
      fail<DataError>("{}: line {}: expected \"<label>\\t<shard>\\t<member>\\t<offset>\\t<size>\"",
                      path, number);
    l.files.push_back(parts[0]);
    l.members.push_back(parts[1]);
    l.offsets.push_back(offset);
    l.sizes.push_back(size);
  }
  if (l.files.empty()) fail<DataError>("{}: the listing has no files", path);
  return l;
}

}  // namespace vitlab
