#include "formats/safetensors.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "formats/little_endian.h"

// The format is little-endian; reading raw bytes into tensors is only right on such a host.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "vitlab's safetensors I/O assumes a little-endian host");

namespace vitlab {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::json;

struct Dtype {
  const char* name;
  int64_t size;
  int rank;  // position in the reference's Dtype enum: the writer orders data by it, widest first
  bool supported;
  torch::ScalarType type;
};

// Every dtype the reference knows; the unsupported ones are recognised so that the error says
// "not supported" rather than "unknown". LibTorch 1.13 has no uint16/32/64 or float8 tensors.
const Dtype kDtypes[] = {
    {"BOOL", 1, 0, true, torch::kBool},     {"U8", 1, 1, true, torch::kByte},
    {"I8", 1, 2, true, torch::kChar},       {"F8_E5M2", 1, 3, false, torch::kByte},
    {"F8_E4M3", 1, 4, false, torch::kByte}, {"I16", 2, 5, true, torch::kShort},
    {"U16", 2, 6, false, torch::kShort},    {"F16", 2, 7, true, torch::kHalf},
    {"BF16", 2, 8, true, torch::kBFloat16}, {"I32", 4, 9, true, torch::kInt},
    {"U32", 4, 10, false, torch::kInt},     {"F32", 4, 11, true, torch::kFloat},
    {"F64", 8, 12, true, torch::kDouble},   {"I64", 8, 13, true, torch::kLong},
    {"U64", 8, 14, false, torch::kLong},
};

const Dtype* dtype_by_name(const std::string& name) {
  for (const Dtype& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const Dtype* dtype_for(torch::ScalarType type) {
  for (const Dtype& d : kDtypes)
    if (d.supported && d.type == type) return &d;
  return nullptr;
}

// A JSON-quoted, length-limited rendering of an untrusted name for error messages.
std::string quoted(const std::string& name) {
  const size_t kMax = 200;
  std::string s = name.size() > kMax ? name.substr(0, kMax) : name;
  std::string out = Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
  return name.size() > kMax ? out + "..." : out;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

struct Entry {
  std::string name;
  const Dtype* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

class HeaderParser {
 public:
  HeaderParser(std::string path, uint64_t data_len) : path_(std::move(path)), data_len_(data_len) {}

  // Parses and checks the header; fills entries (sorted by offset) and metadata.
  void parse(const std::string& text, std::vector<Entry>& entries,
             std::map<std::string, std::string>& metadata) {
    Json root;
    try {
      root = Json::parse(text, make_guard());
    } catch (const Json::exception& e) {
      fail(fmt::format("header is not valid JSON: {}", e.what()));
    }
    // The reference requires the header to start with '{' (no leading whitespace).
    if (!root.is_object() || text.empty() || text[0] != '{') fail("header is not a JSON object");
    for (auto it = root.begin(); it != root.end(); ++it) {
      if (it.key() == "__metadata__") {
        read_metadata(it.value(), metadata);
      } else {
        entries.push_back(read_entry(it.key(), it.value()));
      }
    }
    check_layout(entries);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw IoError(fmt::format("{}: {}", path_, what));
  }
  [[noreturn]] void fail(const std::string& tensor, const std::string& what) const {
    throw IoError(fmt::format("{}: tensor {}: {}", path_, quoted(tensor), what));
  }

  // nlohmann::json keeps the last of duplicate keys silently; this parse callback sees every key
  // and rejects duplicates. It also caps nesting and array lengths so that a hostile header
  // cannot make the DOM much larger than the legitimate shape of one.
  Json::parser_callback_t make_guard() {
    return [this](int depth, Json::parse_event_t event, Json& parsed) {
      using E = Json::parse_event_t;
      switch (event) {
        case E::object_start:
        case E::array_start:
          if (depth >= 3) {
            if (current_.empty()) fail("header nests deeper than a safetensors header can");
            fail(current_, "entry nests deeper than a safetensors header can");
          }
          if (event == E::object_start) keys_.emplace_back();
          array_len_ = 0;
          break;
        case E::object_end:
          if (!keys_.empty()) keys_.pop_back();
          break;
        case E::key: {
          const std::string& key = parsed.get_ref<const std::string&>();
          if (depth == 1) current_ = key;
          if (!keys_.empty() && !keys_.back().insert(key).second) {
            if (depth == 1 && key == "__metadata__") fail("duplicate \"__metadata__\" entry");
            if (depth == 1) fail(key, "duplicate tensor name");
            fail(current_, fmt::format("duplicate key {}", quoted(key)));
          }
          break;
        }
        case E::value:
          if (depth == 3 && ++array_len_ > kMaxArrayLen)
            fail(current_, fmt::format("array has more than {} elements", kMaxArrayLen));
          break;
        default:
          break;
      }
      return true;
    };
  }

  void read_metadata(const Json& value, std::map<std::string, std::string>& metadata) const {
    if (value.is_null()) return;  // the reference reads `null` as "no metadata"
    if (!value.is_object()) fail("\"__metadata__\" is not a JSON object of strings");
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (!it.value().is_string())
        fail(fmt::format("\"__metadata__\" value for {} is not a string", quoted(it.key())));
      metadata[it.key()] = it.value().get<std::string>();
    }
  }

  // A non-negative integer that fits int64 (what shapes and offsets must be).
  uint64_t read_uint(const std::string& name, const char* field, const Json& v) const {
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > uint64_t(std::numeric_limits<int64_t>::max()))
        fail(name, fmt::format("{} value {} is too large", field, u));
      return u;
    }
    if (v.is_number_integer())
      fail(name, fmt::format("{} has a negative value {}", field, v.get<int64_t>()));
    fail(name, fmt::format("{} must contain only non-negative integers, not {}", field,
                           v.dump(-1, ' ', false, Json::error_handler_t::replace)));
  }

  Entry read_entry(const std::string& name, const Json& v) const {
    if (!v.is_object()) fail(name, "entry is not a JSON object");
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string& k = it.key();
      if (k != "dtype" && k != "shape" && k != "data_offsets")
        fail(name, fmt::format("unknown key {} (expected exactly dtype, shape, data_offsets)",
                               quoted(k)));
    }
    for (const char* k : {"dtype", "shape", "data_offsets"})
      if (!v.contains(k)) fail(name, fmt::format("missing key \"{}\"", k));
    Entry e;
    e.name = name;
    const Json& dtype = v["dtype"];
    if (!dtype.is_string()) fail(name, "dtype is not a string");
    e.dtype = dtype_by_name(dtype.get<std::string>());
    if (!e.dtype) fail(name, fmt::format("unknown dtype {}", quoted(dtype.get<std::string>())));
    if (!e.dtype->supported)
      fail(name, fmt::format("dtype {} is not supported (LibTorch has no such tensor type)",
                             e.dtype->name));

    const Json& shape = v["shape"];
    if (!shape.is_array()) fail(name, "shape is not an array");
    uint64_t numel = 1;
    bool overflow = false;
    for (const Json& d : shape) {
      const uint64_t dim = read_uint(name, "shape", d);
      e.shape.push_back(int64_t(dim));
      overflow = overflow || __builtin_mul_overflow(numel, dim, &numel);
    }
    uint64_t nbytes = 0;
    overflow = overflow || numel > uint64_t(std::numeric_limits<int64_t>::max()) ||
               __builtin_mul_overflow(numel, uint64_t(e.dtype->size), &nbytes);
    if (overflow)
      fail(name, fmt::format("shape {} x {} overflows (too many elements)", shape_str(e.shape),
                             e.dtype->name));

    const Json& offsets = v["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2)
      fail(name, "data_offsets is not an array of two integers [begin, end]");
    e.begin = read_uint(name, "data_offsets", offsets[0]);
    e.end = read_uint(name, "data_offsets", offsets[1]);
    const std::string range = fmt::format("data_offsets [{}, {}]", e.begin, e.end);
    if (e.begin > e.end) fail(name, range + ": begin is after end");
    if (e.end - e.begin != nbytes)
      fail(name, fmt::format("{} do not match shape {} x {} = {} bytes", range, shape_str(e.shape),
                             e.dtype->name, nbytes));
    if (e.end > data_len_)
      fail(name,
           fmt::format("{} extend past the end of the data section ({} bytes; truncated file?)",
                       range, data_len_));
    return e;
  }

  // Like the reference, the tensors must tile the data section: sorted by offset, each one
  // starts where the previous ended and the last ends at the end of the file.
  void check_layout(std::vector<Entry>& entries) const {
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
    });
    uint64_t pos = 0;
    const Entry* prev = nullptr;
    for (const Entry& e : entries) {
      if (e.begin < pos)
        fail(e.name, fmt::format("data_offsets [{}, {}] overlap tensor {} [{}, {}]", e.begin, e.end,
                                 quoted(prev->name), prev->begin, prev->end));
      if (e.begin > pos)
        fail(e.name, fmt::format("data_offsets [{}, {}] leave a gap: bytes [{}, {}) of the data "
                                 "section belong to no tensor",
                                 e.begin, e.end, pos, e.begin));
      pos = e.end;
      prev = &e;
    }
    if (pos != data_len_)
      fail(fmt::format("data section has {} bytes but the tensors cover only {} (trailing bytes)",
                       data_len_, pos));
  }

  static constexpr size_t kMaxArrayLen = 64;  // shapes of up to 64 dims; data_offsets has 2
  std::string path_;
  uint64_t data_len_;
  std::vector<std::set<std::string>> keys_;  // keys seen in each open object
  std::string current_;                      // the top-level key being parsed
  size_t array_len_ = 0;
};

}  // namespace

const torch::Tensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw IoError(fmt::format("{}: no such file", path));
  if (!fs::is_regular_file(path, ec)) throw IoError(fmt::format("{}: not a regular file", path));
  const uint64_t file_size = fs::file_size(path, ec);
  if (ec) throw IoError(fmt::format("{}: cannot read: {}", path, ec.message()));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));

  if (file_size < 8)
    throw IoError(
        fmt::format("{}: file has {} bytes, fewer than the 8-byte header length field "
                    "(not a safetensors file)",
                    path, file_size));
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  if (in.gcount() != 8) throw IoError(fmt::format("{}: cannot read the header length", path));
  const uint64_t n = read_le(len_bytes, 8);
  if (n > kSafetensorsMaxHeaderBytes)
    throw IoError(fmt::format("{}: header length {} exceeds the {}-byte limit (corrupt file?)",
                              path, n, kSafetensorsMaxHeaderBytes));
  if (n > file_size - 8)
    throw IoError(
        fmt::format("{}: header length {} exceeds the file size ({} bytes after the "
                    "length field; truncated file?)",
                    path, n, file_size - 8));
  std::string header(n, '\0');
  in.read(header.data(), std::streamsize(n));
  if (uint64_t(in.gcount()) != n)
    throw IoError(fmt::format("{}: file truncated while reading the header", path));

  const uint64_t data_start = 8 + n, data_len = file_size - data_start;
  std::vector<Entry> entries;
  SafetensorsFile out;
  HeaderParser(path, data_len).parse(header, entries, out.metadata);

  for (const Entry& e : entries) {
    torch::Tensor t;
    try {  // size checked against the file above, but memory may still run out
      t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype->type));
    } catch (const c10::Error&) {
      throw IoError(fmt::format("{}: tensor {}: out of memory allocating {} bytes", path,
                                quoted(e.name), e.end - e.begin));
    }
    const uint64_t nbytes = e.end - e.begin;
    if (nbytes > 0) {
      in.seekg(std::streamoff(data_start + e.begin));
      in.read(static_cast<char*>(t.data_ptr()), std::streamsize(nbytes));
      if (!in || uint64_t(in.gcount()) != nbytes)
        throw IoError(
            fmt::format("{}: tensor {}: file truncated while reading data_offsets [{}, {}]", path,
                        quoted(e.name), e.begin, e.end));
    }
    // A bool byte other than 0/1 is undefined behaviour in LibTorch kernels.
    if (e.dtype->type == torch::kBool) {
      const auto* p = static_cast<const unsigned char*>(t.data_ptr());
      if (std::any_of(p, p + nbytes, [](unsigned char b) { return b > 1; }))
        throw IoError(fmt::format("{}: tensor {}: BOOL data contains bytes other than 0 and 1",
                                  path, quoted(e.name)));
    }
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  struct Item {
    std::string name;
    const Dtype* dtype;
    torch::Tensor data;
  };
  std::vector<Item> items;
  std::set<std::string> names;
  for (const auto& entry : tensors) {
    // Not a structured binding: C++17 lambdas cannot capture those (clang refuses; gcc allows).
    const std::string& name = entry.first;
    const torch::Tensor& tensor = entry.second;
    const auto bad = [&](const std::string& what) {
      return IoError(fmt::format("{}: cannot write tensor {}: {}", path, quoted(name), what));
    };
    if (name == "__metadata__") throw bad("the name \"__metadata__\" is reserved");
    if (!names.insert(name).second) throw bad("duplicate name");
    if (!tensor.defined()) throw bad("tensor is undefined");
    if (tensor.layout() != torch::kStrided) throw bad("only dense (strided) tensors can be saved");
    const Dtype* dtype = dtype_for(tensor.scalar_type());
    if (!dtype)
      throw bad(fmt::format("dtype {} has no safetensors equivalent",
                            c10::toString(tensor.scalar_type())));
    items.push_back({name, dtype, tensor.detach().to(torch::kCPU).contiguous()});
  }
  // The reference's order: dtype descending, then name.
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    if (a.dtype->rank != b.dtype->rank) return a.dtype->rank > b.dtype->rank;
    return a.name < b.name;
  });

  // serde_json's compact output, reproduced by hand to keep the reference's key order.
  const auto json_str = [&](const std::string& s) {
    try {
      return Json(s).dump();
    } catch (const Json::exception&) {
      throw IoError(
          fmt::format("{}: cannot write: name or metadata {} is not valid UTF-8", path, quoted(s)));
    }
  };
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      header += (first ? "" : ",") + json_str(k) + ":" + json_str(v);
      first = false;
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (const Item& item : items) {
    const uint64_t nbytes = uint64_t(item.data.numel()) * uint64_t(item.dtype->size);
    std::string shape;
    for (int64_t d : item.data.sizes()) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    header += fmt::format("{}{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                          header.size() > 1 ? "," : "", json_str(item.name), item.dtype->name,
                          shape, offset, offset + nbytes);
    offset += nbytes;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // so that the data starts 8-byte aligned

  write_atomic_with(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
    unsigned char len[8];
    for (int i = 0; i < 8; ++i)
      len[i] = static_cast<unsigned char>(uint64_t(header.size()) >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(header.data(), std::streamsize(header.size()));
    for (const Item& item : items)
      out.write(static_cast<const char*>(item.data.data_ptr()),
                std::streamsize(item.data.numel() * item.dtype->size));
    out.flush();
    if (!out) throw IoError(fmt::format("{}: write failed (disk full?)", path));
  });
}

}  // namespace vitlab
