#include "data/tar_shards.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace vitlab {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kBlock = 512;
constexpr int64_t kProgressEvery = 5000;
constexpr int64_t kMaxLabel = (int64_t{1} << 24) - 1;  // load_listing's class-count bound

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// A NUL-terminated field of at most `n` bytes.
std::string field(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

// An octal number field (spaces and NULs around it), or GNU's base-256 when the top bit is set.
int64_t number_field(const unsigned char* p, size_t n) {
  if (p[0] & 0x80) {
    int64_t v = p[0] & 0x3f;
    for (size_t i = 1; i < n; ++i) {
      if (v > (INT64_MAX >> 8)) return -1;
      v = (v << 8) | p[i];
    }
    return v;
  }
  int64_t v = 0;
  size_t i = 0;
  while (i < n && p[i] == ' ') ++i;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (v > (INT64_MAX >> 3)) return -1;
    v = v * 8 + (p[i] - '0');
  }
  for (; i < n; ++i)
    if (p[i] != ' ' && p[i] != '\0') return -1;
  return v;
}

// The header's checksum holds: the sum of its bytes with the checksum field read as spaces
// (unsigned, as POSIX says, or signed, as some old tars wrote it).
bool checksum_holds(const unsigned char* h) {
  const int64_t stored = number_field(h + 148, 8);
  int64_t sum = 0, signed_sum = 0;
  for (int64_t i = 0; i < kBlock; ++i) {
    const bool in_field = i >= 148 && i < 156;
    sum += in_field ? ' ' : h[i];
    signed_sum += in_field ? ' ' : static_cast<signed char>(h[i]);
  }
  return stored >= 0 && (stored == sum || stored == signed_sum);
}

// The "path" record of a pax extended header ("<length> path=<value>\n" records), or "".
std::string pax_path(const std::string& records) {
  for (size_t at = 0; at < records.size();) {
    const size_t space = records.find(' ', at);
    if (space == std::string::npos) break;
    int64_t length = 0;
    try {
      length = std::stoll(records.substr(at, space - at));
    } catch (const std::exception&) {
      break;
    }
    if (length <= 0 || at + size_t(length) > records.size()) break;
    const std::string record = records.substr(space + 1, at + length - space - 2);  // no '\n'
    if (record.rfind("path=", 0) == 0) return record.substr(5);
    at += size_t(length);
  }
  return "";
}

std::string read_text(std::istream& in, const std::string& path, int64_t offset, int64_t size) {
  std::string text(static_cast<size_t>(size), '\0');
  if (!in.read(text.data(), size))
    fail<DataError>("{}: cannot read the {} bytes at byte {}", path, size, offset);
  return text;
}

}  // namespace

bool is_shard_split(const std::string& split_dir) {
  std::error_code ec;
  bool tars = false, folders = false;
  for (fs::directory_iterator it(split_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec)) folders = true;
    else if (lower(it->path().extension().string()) == ".tar") tars = true;
  }
  if (tars && folders)
    fail<DataError>("{}: holds both class folders and .tar shards; keep one layout per split",
                    split_dir);
  return tars;
}

void scan_tar(const std::string& path,
              const std::function<void(const TarMember&, std::istream& in)>& on_member) {
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  const auto file_size = static_cast<int64_t>(fs::file_size(path, ec));
  if (!in || ec) fail<DataError>("{}: cannot open the tar shard", path);
  std::string long_name;  // from a GNU 'L' or pax 'x' header, for the next member
  for (int64_t at = 0; at < file_size;) {
    unsigned char h[kBlock];
    in.clear();
    in.seekg(at);
    if (at + kBlock > file_size || !in.read(reinterpret_cast<char*>(h), kBlock))
      fail<DataError>("{}: the file ends inside the header at byte {} (truncated?)", path, at);
    if (std::all_of(h, h + kBlock, [](unsigned char c) { return c == 0; })) return;  // end
    if (!checksum_holds(h))
      fail<DataError>("{}: the tar header at byte {} is corrupt (its checksum does not hold)", path, at);
    const int64_t size = number_field(h + 124, 12);
    const int64_t data = at + kBlock;
    if (size < 0 || size > file_size - data)
      fail<DataError>("{}: the file ends inside the member at byte {} ({} bytes declared; "
                      "truncated?)", path, at, size);
    const char type = static_cast<char>(h[156]);
    const char* c = reinterpret_cast<const char*>(h);
    if (type == 'L' || type == 'x') {  // the next member's long name
      in.seekg(data);
      const std::string text = read_text(in, path, data, size);
      long_name = type == 'L' ? field(text.data(), text.size()) : pax_path(text);
    } else if (type == '0' || type == '\0') {
      std::string name = field(c, 100);
      if (std::memcmp(h + 257, "ustar\0", 6) == 0 && h[345] != 0) name = field(c + 345, 155) + "/" + name;
      if (!long_name.empty()) name = long_name;
      long_name.clear();
      in.seekg(data);
      on_member(TarMember{name, data, size}, in);
    } else {
      long_name.clear();  // directories, links and the rest hold no samples
    }
    at = data + (size + kBlock - 1) / kBlock * kBlock;
  }
  // Every tar writer ends the archive with zero blocks: a file without them was cut short, and
  // the samples after the cut would be lost without a word.
  fail<DataError>("{}: the file ends at byte {} without tar's end-of-archive blocks (truncated?)",
                  path, file_size);
}

namespace {

// A sample being gathered from consecutive members of one key.
struct Sample {
  std::string key;
  TarMember image;
  bool has_image = false;
  int64_t label = -1;
};

// Key and lower-case extension of a member: WebDataset splits the file name at its first '.'.
std::pair<std::string, std::string> key_and_extension(const std::string& name) {
  const size_t slash = name.rfind('/');
  const size_t dot = name.find('.', slash == std::string::npos ? 0 : slash + 1);
  if (dot == std::string::npos) return {name, ""};
  return {name.substr(0, dot), lower(name.substr(dot + 1))};
}

int64_t parse_label(const std::string& text) {
  size_t i = 0, j = text.size();
  while (i < j && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  while (j > i && std::isspace(static_cast<unsigned char>(text[j - 1]))) --j;
  if (i == j || j - i > 9) return -1;
  int64_t v = 0;
  for (size_t k = i; k < j; ++k) {
    if (!std::isdigit(static_cast<unsigned char>(text[k]))) return -1;
    v = v * 10 + (text[k] - '0');
  }
  return v;
}

}  // namespace

FileListing list_shard_split(const std::string& root, const std::string& split,
                             const std::vector<std::string>* classes,
                             const std::function<void(int64_t)>& progress) {
  const fs::path dir = fs::path(root) / split;
  const std::vector<std::string> shards =
      sorted_entry_names(dir.string(), [](const fs::directory_entry& e) {
        return lower(e.path().extension().string()) == ".tar";
      });
  FileListing l;
  l.root = root;
  l.split = split;
  int64_t largest = -1;
  for (const auto& shard : shards) {
    const std::string path = (dir / shard).string();
    Sample s;
    const auto finish = [&] {
      if (s.key.empty()) return;
      if (!s.has_image)
        fail<DataError>("{}: sample \"{}\" has no .jpg, .jpeg or .png image", path, s.key);
      if (s.label < 0)
        fail<DataError>("{}: sample \"{}\" has no .cls member holding its class index", path, s.key);
      if (classes && s.label >= int64_t(classes->size()))
        fail<DataError>("{}: sample \"{}\" has class {}, but the training split has {} classes",
                        path, s.key, s.label, classes->size());
      largest = std::max(largest, s.label);
      l.files.push_back(split + "/" + shard);
      l.members.push_back(s.image.name);
      l.offsets.push_back(s.image.offset);
      l.sizes.push_back(s.image.size);
      l.labels.push_back(static_cast<int32_t>(s.label));
      if (progress && l.size() % kProgressEvery == 0) progress(l.size());
    };
    scan_tar(path, [&](const TarMember& m, std::istream& in) {
      const auto [key, extension] = key_and_extension(m.name);
      // WebDataset's decoders go by the last part of a field's extension ("left.png" is a PNG).
      const std::string ext = extension.substr(extension.rfind('.') + 1);
      if (key != s.key) {
        finish();
        s = Sample();
        s.key = key;
      }
      if ((ext == "jpg" || ext == "jpeg" || ext == "png") && !s.has_image) {
        s.image = m;
        s.has_image = true;
      } else if (ext == "cls") {
        s.label = m.size <= 16 ? parse_label(read_text(in, path, m.offset, m.size)) : -1;
        if (s.label < 0 || s.label > kMaxLabel)
          fail<DataError>("{}: {}: not a class index (decimal digits, below {})", path, m.name,
                          kMaxLabel + 1);
      }
    });
    finish();
  }
  if (l.files.empty())
    fail<DataError>("{}: no samples in its .tar shards (an image and a .cls per key)", dir.string());
  if (classes) l.class_names = *classes;
  else
    for (int64_t c = 0; c <= largest; ++c) l.class_names.push_back(std::to_string(c));
  if (progress) progress(l.size());
  return l;
}

}  // namespace vitlab
