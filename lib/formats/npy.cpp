#include "formats/npy.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/error.h"
#include "formats/little_endian.h"

// .npy data is read into tensors byte for byte, which is only right on a little-endian host.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "vitlab's .npy I/O assumes a little-endian host");

namespace vitlab {
namespace {

struct NpyType {
  const char* code;  // descr without the byte-order character
  torch::ScalarType type;
  int64_t size;
};

const NpyType kTypes[] = {
    {"b1", torch::kBool, 1},  {"u1", torch::kByte, 1},  {"i1", torch::kChar, 1},
    {"i2", torch::kShort, 2}, {"i4", torch::kInt, 4},   {"i8", torch::kLong, 8},
    {"f2", torch::kHalf, 2},  {"f4", torch::kFloat, 4}, {"f8", torch::kDouble, 8},
};

constexpr size_t kMaxDims = 64;

struct Header {
  const NpyType* type = nullptr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  uint64_t data_bytes = 0;
};

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + (shape.size() == 1 ? ",)" : ")");
}

// The header dict as numpy writes it, e.g. {'descr': '<f4', 'fortran_order': False,
// 'shape': (2, 3), }: Python literals only, parsed by hand because the file is untrusted.
class DictParser {
 public:
  DictParser(const std::string& text, const std::string& where) : s_(text), where_(where) {}

  Header parse() {
    Header h;
    bool seen_descr = false, seen_fortran = false, seen_shape = false;
    std::string descr;
    skip_ws();
    expect('{', "header is not a Python dict");
    for (;;) {
      skip_ws();
      if (peek() == '}') {
        ++i_;
        break;
      }
      const std::string key = string_literal("dict key");
      skip_ws();
      expect(':', "expected ':' after a dict key");
      skip_ws();
      bool* seen = key == "descr"           ? &seen_descr
                   : key == "fortran_order" ? &seen_fortran
                   : key == "shape"         ? &seen_shape
                                            : nullptr;
      if (!seen)
        fail(fmt::format("unknown key '{}' (expected exactly 'descr', 'fortran_order', 'shape')",
                         key));
      if (*seen) fail(fmt::format("duplicate key '{}'", key));
      *seen = true;
      if (key == "descr") {
        if (peek() == '[') fail("structured dtypes (descr given as a list) are not supported");
        descr = string_literal("'descr' value");
      } else if (key == "fortran_order") {
        h.fortran_order = boolean();
      } else {
        h.shape = tuple();
      }
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect('}', "expected ',' or '}' after a dict value");
      break;
    }
    skip_ws();
    if (i_ != s_.size()) fail("unexpected text after the dict");
    if (!seen_descr || !seen_fortran || !seen_shape)
      fail("dict must have exactly the keys 'descr', 'fortran_order' and 'shape'");
    h.type = parse_descr(descr);

    uint64_t numel = 1;
    bool overflow = false;
    for (int64_t d : h.shape)
      overflow = overflow || __builtin_mul_overflow(numel, uint64_t(d), &numel);
    overflow = overflow || numel > uint64_t(std::numeric_limits<int64_t>::max()) ||
               __builtin_mul_overflow(numel, uint64_t(h.type->size), &h.data_bytes);
    if (overflow)
      fail(fmt::format("shape {} x '{}' overflows (too many elements)", shape_str(h.shape), descr));
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    std::string excerpt = s_.substr(0, 160);
    for (char& c : excerpt)
      if (c < 0x20 || c > 0x7e) c = '?';
    throw IoError(fmt::format("{}: bad .npy header: {} (header: {}{})", where_, what, excerpt,
                              s_.size() > 160 ? "..." : ""));
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r'))
      ++i_;
  }
  void expect(char c, const char* what) {
    if (peek() != c) fail(what);
    ++i_;
  }

  // '...' or "..." of printable ASCII; escapes are never needed in a valid header.
  std::string string_literal(const char* what) {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail(fmt::format("{} is not a string", what));
    const size_t start = ++i_;
    while (i_ < s_.size() && s_[i_] != quote) {
      if (s_[i_] == '\n') break;  // a Python string literal ends on its line
      if (s_[i_] == '\\' || s_[i_] < 0x20 || s_[i_] > 0x7e)
        fail(fmt::format("{} contains an escape or non-printable character", what));
      ++i_;
    }
    if (i_ == s_.size() || s_[i_] != quote) fail(fmt::format("{} is an unterminated string", what));
    return s_.substr(start, i_++ - start);
  }

  bool boolean() {
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      const size_t n = std::strlen(word);
      if (s_.compare(i_, n, word) == 0) {
        i_ += n;
        return value;
      }
    }
    fail("'fortran_order' must be True or False");
  }

  // A tuple of non-negative ints: (), (3,), (2, 3) or (2, 3,). (3) is an int, not a tuple.
  std::vector<int64_t> tuple() {
    std::vector<int64_t> dims;
    expect('(', "'shape' must be a tuple of integers");
    skip_ws();
    if (peek() == ')') {
      ++i_;
      return dims;
    }
    for (;;) {
      dims.push_back(integer());
      if (dims.size() > kMaxDims)
        fail(fmt::format("'shape' has more than {} dimensions", kMaxDims));
      skip_ws();
      if (peek() == ',') {
        ++i_;
        skip_ws();
        if (peek() == ')') {
          ++i_;
          return dims;
        }
        continue;
      }
      expect(')', "'shape' must be a tuple of integers");
      if (dims.size() == 1) fail("'shape' is not a tuple (a one-element tuple is written (n,))");
      return dims;
    }
  }

  int64_t integer() {
    if (peek() == '-') fail("'shape' has a negative dimension");
    if (!std::isdigit(static_cast<unsigned char>(peek())))
      fail("'shape' must be a tuple of integers");
    int64_t v = 0;
    while (std::isdigit(static_cast<unsigned char>(peek()))) {
      if (__builtin_mul_overflow(v, int64_t(10), &v) ||
          __builtin_add_overflow(v, int64_t(s_[i_] - '0'), &v))
        fail("'shape' has a dimension too large for int64");
      ++i_;
    }
    if (peek() == 'L' || peek() == 'l') ++i_;  // Python 2 long literal, as in old files
    return v;
  }

  const NpyType* parse_descr(const std::string& descr) const {
    const std::string d = fmt::format("descr '{}'", descr);
    if (descr.size() < 2) fail(d + " is not a numpy type string");
    const char order = descr[0];
    const std::string code = descr.substr(1);
    if (order == '>') fail(d + " is big-endian; only little-endian ('<') data is supported");
    if (order != '<' && order != '|') fail(d + " must start with byte order '<' or '|'");
    if (code[0] == 'O') fail(d + ": object arrays (pickled Python objects) are not supported");
    for (const NpyType& t : kTypes) {
      if (code != t.code) continue;
      if (order == '|' && t.size > 1) fail(d + ": byte order '|' is invalid for a multi-byte type");
      return &t;
    }
    if (code == "u2" || code == "u4" || code == "u8")
      fail(d + ": unsigned 16/32/64-bit integers are not supported by LibTorch");
    if (code[0] == 'V')
      fail(d + ": raw/void data (e.g. bfloat16 saved through ml_dtypes) is not supported");
    fail(d + " is not supported (supported: |b1 |u1 |i1 <i2 <i4 <i8 <f2 <f4 <f8)");
  }

  const std::string& s_;
  const std::string& where_;
  size_t i_ = 0;
};

// Reads exactly n bytes or throws naming what was being read.
void read_exact(const NpyReadFn& read, void* dst, uint64_t n, const std::string& where,
                const char* what) {
  uint64_t got = 0;
  auto* p = static_cast<char*>(dst);
  while (got < n) {
    const uint64_t r = read(p + got, n - got);
    if (r == 0)
      throw IoError(fmt::format("{}: truncated .npy: {} has {} of {} bytes", where, what, got, n));
    got += r;
  }
}

}  // namespace

torch::Tensor read_npy(const NpyReadFn& read, uint64_t entry_size, const std::string& where) {
  if (entry_size < 10)
    throw IoError(fmt::format("{}: {} bytes is too short to be a .npy array", where, entry_size));
  unsigned char pre[12];
  read_exact(read, pre, 8, where, "the magic string");
  if (std::memcmp(pre, "\x93NUMPY", 6) != 0)
    throw IoError(fmt::format("{}: bad magic: not a .npy array (expected \"\\x93NUMPY\")", where));
  const int major = pre[6], minor = pre[7];
  if (major < 1 || major > 3 || minor != 0)
    throw IoError(fmt::format("{}: unsupported .npy version {}.{} (supported: 1.0, 2.0, 3.0)",
                              where, major, minor));
  const uint64_t len_bytes = major == 1 ? 2 : 4;
  if (entry_size < 8 + len_bytes)
    throw IoError(fmt::format("{}: {} bytes is too short to be a .npy array", where, entry_size));
  read_exact(read, pre + 8, len_bytes, where, "the header length");
  const uint64_t header_len = read_le(pre + 8, static_cast<int>(len_bytes));
  if (header_len > kNpyMaxHeaderBytes)
    throw IoError(fmt::format("{}: .npy header length {} exceeds the {}-byte limit", where,
                              header_len, kNpyMaxHeaderBytes));
  const uint64_t data_start = 8 + len_bytes + header_len;
  if (data_start > entry_size)
    throw IoError(fmt::format("{}: .npy header length {} exceeds the entry ({} bytes)", where,
                              header_len, entry_size));
  std::string text(header_len, '\0');
  read_exact(read, text.data(), header_len, where, "the header");
  const Header h = DictParser(text, where).parse();

  const uint64_t available = entry_size - data_start;
  if (available != h.data_bytes)
    throw IoError(fmt::format("{}: .npy data has {} bytes but shape {} x {} needs {} bytes", where,
                              available, shape_str(h.shape), h.type->code, h.data_bytes));

  // Fortran order: the bytes are the C-order layout of the reversed shape.
  std::vector<int64_t> stored = h.shape;
  if (h.fortran_order) std::reverse(stored.begin(), stored.end());
  torch::Tensor t;
  try {  // size checked against the entry's, but memory may still run out
    t = torch::empty(stored, torch::TensorOptions().dtype(h.type->type));
  } catch (const c10::Error&) {
    throw IoError(fmt::format("{}: out of memory allocating {} bytes", where, h.data_bytes));
  }
  if (h.data_bytes > 0) read_exact(read, t.data_ptr(), h.data_bytes, where, "the data");
  char extra;
  if (read(&extra, 1) != 0)
    throw IoError(fmt::format("{}: more bytes than the declared {}-byte size", where, entry_size));
  if (h.type->type == torch::kBool) {  // bytes other than 0/1 are undefined behaviour in LibTorch
    const auto* p = static_cast<const unsigned char*>(t.data_ptr());
    if (std::any_of(p, p + h.data_bytes, [](unsigned char b) { return b > 1; }))
      throw IoError(fmt::format("{}: bool data contains bytes other than 0 and 1", where));
  }
  if (h.fortran_order && t.dim() > 1) {
    std::vector<int64_t> perm(t.dim());
    for (int64_t i = 0; i < t.dim(); ++i) perm[i] = t.dim() - 1 - i;
    t = t.permute(perm).contiguous();
  }
  return t;
}

torch::Tensor decode_npy(const std::string& bytes, const std::string& where) {
  uint64_t pos = 0;
  const NpyReadFn read = [&](void* dst, uint64_t n) {
    const uint64_t k = std::min<uint64_t>(n, bytes.size() - pos);
    std::memcpy(dst, bytes.data() + pos, k);
    pos += k;
    return k;
  };
  return read_npy(read, bytes.size(), where);
}

torch::Tensor read_npy_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw IoError(fmt::format("{}: no such file", path));
  const uint64_t size = std::filesystem::file_size(path, ec);
  std::ifstream in(path, std::ios::binary);
  if (ec || !in) throw IoError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  const NpyReadFn read = [&](void* dst, uint64_t n) {
    in.read(static_cast<char*>(dst), std::streamsize(n));
    if (in.bad()) throw IoError(fmt::format("{}: read error", path));
    return uint64_t(in.gcount());
  };
  return read_npy(read, size, path);
}

std::string encode_npy(const torch::Tensor& tensor, const std::string& where) {
  if (!tensor.defined()) throw IoError(fmt::format("{}: tensor is undefined", where));
  if (tensor.layout() != torch::kStrided)
    throw IoError(fmt::format("{}: only dense (strided) tensors can be saved", where));
  const auto it = std::find_if(std::begin(kTypes), std::end(kTypes),
                               [&](const NpyType& t) { return t.type == tensor.scalar_type(); });
  if (it == std::end(kTypes))
    throw IoError(fmt::format("{}: dtype {} has no .npy equivalent", where,
                              c10::toString(tensor.scalar_type())));
  const torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
  const std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
  std::string dict = fmt::format("{{'descr': '{}{}', 'fortran_order': False, 'shape': {}, }}",
                                 it->size == 1 ? '|' : '<', it->code, shape_str(shape));
  // numpy's padding: magic + version + length + header + '\n' end on a 64-byte boundary.
  dict.append(64 - (10 + dict.size() + 1) % 64, ' ');
  dict += '\n';
  if (dict.size() > 65535) throw IoError(fmt::format("{}: .npy header too long", where));
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>(dict.size() >> 8);
  out += dict;
  const size_t nbytes = size_t(t.numel()) * size_t(it->size);
  if (nbytes > 0) out.append(static_cast<const char*>(t.data_ptr()), nbytes);
  return out;
}

}  // namespace vitlab
