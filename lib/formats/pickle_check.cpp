// check_pickle (formats/torch_archive.h): one pass over a pickle's opcodes, protocols 0 to 5, as
// Python's pickletools lists them. Nothing is built; only the operands that make LibTorch's
// unpickler allocate are bounded.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "core/error.h"
#include "formats/little_endian.h"
#include "formats/torch_archive.h"

namespace vitlab {
namespace {

// How an opcode's operand is laid out.
enum class Arg {
  kNone,      // no operand
  kFixed,     // `size` bytes
  kCounted,   // a `size`-byte little-endian length, then that many bytes
  kLine,      // bytes up to a newline
  kTwoLines,  // two newline-ended lines (GLOBAL, INST)
  kFrame,     // an 8-byte frame length; the frame's opcodes follow inline
  kPut,       // a `size`-byte memo index that is written
  kGet,       // a `size`-byte memo index that is read
  kMemoize,   // writes the next memo slot
  kStop,
};

struct Opcode {
  Arg arg = Arg::kNone;
  int size = 0;
  bool known = false;
};

constexpr Opcode op(Arg arg, int size = 0) {
  return Opcode{arg, size, true};
}

struct Table {
  Opcode ops[256];
  // By the opcode's character ('J') or, past ASCII, its value (0x80).
  constexpr void set(unsigned char c, Opcode o) { ops[c] = o; }
  constexpr Table() : ops() {
    // MARK EMPTY_TUPLE POP POP_MARK DUP NONE REDUCE APPEND BUILD DICT APPENDS LIST OBJ SETITEM
    // TUPLE SETITEMS EMPTY_DICT EMPTY_LIST BINPERSID
    for (char c : std::string_view("()012NRabdelostu}]Q")) set(c, op(Arg::kNone));
    set('.', op(Arg::kStop));                                   // STOP
    for (int c = 0x81; c <= 0x98; ++c) set(c, op(Arg::kNone));  // NEWOBJ .. READONLY_BUFFER
    set('J', op(Arg::kFixed, 4));                               // BININT
    set('K', op(Arg::kFixed, 1));                               // BININT1
    set('M', op(Arg::kFixed, 2));                               // BININT2
    set('G', op(Arg::kFixed, 8));                               // BINFLOAT
    set(0x80, op(Arg::kFixed, 1));                              // PROTO
    set(0x82, op(Arg::kFixed, 1));                              // EXT1
    set(0x83, op(Arg::kFixed, 2));                              // EXT2
    set(0x84, op(Arg::kFixed, 4));                              // EXT4
    set('U', op(Arg::kCounted, 1));                             // SHORT_BINSTRING
    set('T', op(Arg::kCounted, 4));                             // BINSTRING
    set('X', op(Arg::kCounted, 4));                             // BINUNICODE
    set('C', op(Arg::kCounted, 1));                             // SHORT_BINBYTES
    set('B', op(Arg::kCounted, 4));                             // BINBYTES
    set(0x8a, op(Arg::kCounted, 1));                            // LONG1
    set(0x8b, op(Arg::kCounted, 4));                            // LONG4
    set(0x8c, op(Arg::kCounted, 1));                            // SHORT_BINUNICODE
    set(0x8d, op(Arg::kCounted, 8));                            // BINUNICODE8
    set(0x8e, op(Arg::kCounted, 8));                            // BINBYTES8
    set(0x96, op(Arg::kCounted, 8));                            // BYTEARRAY8
    set(0x95, op(Arg::kFrame, 8));                              // FRAME
    // INT FLOAT LONG STRING UNICODE PERSID
    for (char c : std::string_view("IFLSVP")) set(c, op(Arg::kLine));
    set('c', op(Arg::kTwoLines));  // GLOBAL
    set('i', op(Arg::kTwoLines));  // INST
    set('q', op(Arg::kPut, 1));    // BINPUT
    set('r', op(Arg::kPut, 4));    // LONG_BINPUT
    set('p', op(Arg::kLine));      // PUT (decimal; LibTorch refuses it)
    set('h', op(Arg::kGet, 1));    // BINGET
    set('j', op(Arg::kGet, 4));    // LONG_BINGET
    set('g', op(Arg::kLine));      // GET (decimal; LibTorch refuses it)
    set(0x94, op(Arg::kMemoize));  // MEMOIZE
  }
};

constexpr Table kTable;

}  // namespace

void check_pickle(std::string_view bytes, const std::string& where) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const uint64_t n = bytes.size();
  uint64_t memo = 0;  // filled memo slots: LibTorch sizes its memo table by the largest index
  auto bad = [&](uint64_t at, const std::string& what) {
    throw IoError(fmt::format("{}: {} at byte {}", where, what, at));
  };
  uint64_t at = 0;
  while (at < n) {
    const uint64_t start = at;
    const Opcode o = kTable.ops[p[at++]];
    if (!o.known) bad(start, fmt::format("unknown opcode 0x{:02x}", p[start]));
    if (o.arg == Arg::kStop) return;
    if (o.size > 0 && n - at < static_cast<uint64_t>(o.size)) bad(start, "an operand past the end");
    const uint64_t value = o.size > 0 ? read_le(p + at, o.size) : 0;
    at += static_cast<uint64_t>(o.size);
    switch (o.arg) {
      case Arg::kCounted:
        if (value > n - at)
          bad(start, fmt::format("a length of {} with {} bytes left", value, n - at));
        at += value;
        break;
      case Arg::kFrame:
        if (value > n - at)
          bad(start, fmt::format("a frame of {} with {} bytes left", value, n - at));
        break;
      case Arg::kLine:
      case Arg::kTwoLines:
        for (int lines = o.arg == Arg::kLine ? 1 : 2; lines > 0; --lines) {
          const void* nl = std::memchr(p + at, '\n', n - at);
          if (nl == nullptr) bad(start, "a line operand without its newline");
          at = static_cast<uint64_t>(static_cast<const unsigned char*>(nl) - p) + 1;
        }
        break;
      case Arg::kPut:
        if (value > memo) bad(start, fmt::format("memo index {} with {} filled", value, memo));
        memo = std::max(memo, value + 1);
        break;
      case Arg::kGet:
        if (value >= memo) bad(start, fmt::format("memo index {} with {} filled", value, memo));
        break;
      case Arg::kMemoize:
        ++memo;
        break;
      default:
        break;
    }
  }
  bad(n, "no STOP opcode");
}

}  // namespace vitlab
