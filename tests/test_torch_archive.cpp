// The LibTorch archive check run before a checkpoint is loaded (formats/torch_archive.h).
#include <zlib.h>

#include <cstdint>
#include <string>

#include "config/model_presets.h"
#include "formats/torch_archive.h"
#include "models/factory.h"
#include "test_helpers.h"
#include "train/checkpoint.h"

using namespace vitlab;

namespace {

std::string le_bytes(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// The offset of `needle` in `haystack` (which must hold it).
size_t find(const std::string& haystack, const std::string& needle) {
  const size_t at = haystack.find(needle);
  REQUIRE(at != std::string::npos);
  return at;
}

// A one-entry stored zip in the zip64 layout LibTorch's writer uses for large archives: the
// directory's sizes and offset saturated with their values in a zip64 extra field, and a zip64
// end record with its locator. `crc_change` is xor-ed into the CRC-32 of `data`.
std::string zip64_archive(const std::string& name, const std::string& data,
                          uint32_t crc_change = 0) {
  const uint32_t crc = static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(data.data()),
                                                   static_cast<uInt>(data.size()))) ^
                       crc_change;
  const auto u16 = [](uint64_t v) { return le_bytes(v, 2); };
  const auto u32 = [](uint64_t v) { return le_bytes(v, 4); };
  const auto u64 = [](uint64_t v) { return le_bytes(v, 8); };
  std::string zip = u32(0x04034b50) + u16(45) + u16(0) + u16(0) + u32(0) + u32(crc) +
                    u32(data.size()) + u32(data.size()) + u16(name.size()) + u16(0) + name + data;
  const uint64_t directory = zip.size();
  const std::string extra = u16(1) + u16(24) + u64(data.size()) + u64(data.size()) + u64(0);
  zip += u32(0x02014b50) + u16(45) + u16(45) + u16(0) + u16(0) + u32(0) + u32(crc) +
         u32(0xffffffff) + u32(0xffffffff) + u16(name.size()) + u16(extra.size()) + u16(0) +
         u16(0) + u16(0) + u32(0) + u32(0xffffffff) + name + extra;
  const uint64_t directory_bytes = zip.size() - directory, end64 = zip.size();
  zip += u32(0x06064b50) + u64(44) + u16(45) + u16(45) + u32(0) + u32(0) + u64(1) + u64(1) +
         u64(directory_bytes) + u64(directory);
  zip += u32(0x07064b50) + u32(0) + u64(end64) + u32(1);
  zip += u32(0x06054b50) + u16(0) + u16(0) + u16(0xffff) + u16(0xffff) + u32(0xffffffff) +
         u32(0xffffffff) + u16(0);
  return zip;
}

}  // namespace

TEST_CASE("LibTorch archive check: real checkpoints pass, broken records are named", "[io]") {
  test::TempDir dir;
  Checkpoint c;
  c.config = Json{{"k", 1}};
  c.model = module_state(*build_model(find_model_preset("vit_tiny_p4_28").config));
  c.optimizer = {{"step", torch::full({}, 7, torch::kLong)}};
  save_checkpoint(dir.file("a.pt"), c);
  check_torch_archive(dir.file("a.pt"));
  const std::string good = test::read_text(dir.file("a.pt"));

  // One byte of a tensor's data changed: the record's CRC no longer matches.
  std::string flipped = good;
  flipped[find(good, "data/0") + 200] ^= 0x01;
  test::write_text(dir.file("flip.pt"), flipped);
  REQUIRE_THROWS_WITH_TYPE(check_torch_archive(dir.file("flip.pt")), IoError, "CRC-32 mismatch");
  // LibTorch would leak inside its zip reader here; load_checkpoint never lets it see the file.
  REQUIRE_THROWS_WITH_TYPE(load_checkpoint(dir.file("flip.pt")), IoError,
                           "flip.pt: not a valid LibTorch archive (corrupt or truncated?): entry");

  // Cut anywhere: the end record is gone, or it points past the end.
  for (size_t keep : {size_t(0), size_t(10), good.size() / 2, good.size() - 1}) {
    test::write_text(dir.file("cut.pt"), good.substr(0, keep));
    REQUIRE_THROWS_WITH_TYPE(check_torch_archive(dir.file("cut.pt")), IoError,
                             "cut.pt: not a valid LibTorch archive");
  }
  // The directory moved past the end of the file.
  std::string moved = good;
  const size_t end = moved.rfind(std::string("PK\x05\x06", 4));
  moved.replace(end + 16, 4, le_bytes(good.size() + 100, 4));
  test::write_text(dir.file("moved.pt"), moved);
  REQUIRE_THROWS_WITH_TYPE(check_torch_archive(dir.file("moved.pt")), IoError,
                           "does not end at the end record");
  REQUIRE_THROWS_WITH_TYPE(check_torch_archive(dir.file("none.pt")), IoError,
                           "none.pt: cannot open");
}

TEST_CASE("LibTorch archive check: zip64 directories, compression methods, pickles inside",
          "[io]") {
  test::TempDir dir;
  const std::string data = "\x80\x02K\x05.";  // a pickle: PROTO 2, BININT1 5, STOP
  test::write_text(dir.file("z64.pt"), zip64_archive("a/data.pkl", data));
  check_torch_archive(dir.file("z64.pt"));
  test::write_text(dir.file("crc.pt"), zip64_archive("a/data.pkl", data, 1));
  REQUIRE_THROWS_WITH_TYPE(check_torch_archive(dir.file("crc.pt")), IoError,
                           "entry \"a/data.pkl\": CRC-32 mismatch");
  // The same bytes marked deflated (the method at byte 10 of the directory entry): not deflate
  // data.
  std::string deflated = zip64_archive("a/data.pkl", data);
  deflated[find(deflated, std::string("PK\x01\x02", 4)) + 10] = 8;
  test::write_text(dir.file("deflate.pt"), deflated);
  REQUIRE_THROWS_WITH_TYPE(check_torch_archive(dir.file("deflate.pt")), IoError,
                           "corrupt deflate data");
  deflated[find(deflated, std::string("PK\x01\x02", 4)) + 10] = 12;  // bzip2
  test::write_text(dir.file("bzip2.pt"), deflated);
  REQUIRE_THROWS_WITH_TYPE(check_torch_archive(dir.file("bzip2.pt")), IoError,
                           "uses compression method 12");
  // A pickle inside that declares more than it holds.
  const std::string big = std::string("\x80\x02X", 3) + le_bytes(704'000'000, 4) + "abc.";
  test::write_text(dir.file("big.pt"), zip64_archive("a/data.pkl", big));
  REQUIRE_THROWS_WITH_TYPE(
      check_torch_archive(dir.file("big.pt")), IoError,
      "pickle \"a/data.pkl\": a length of 704000000 with 4 bytes left at byte 2");
}

TEST_CASE("pickle check: lengths and memo indices bounded by the bytes, known opcodes, STOP",
          "[io]") {
  const auto check = [](const std::string& bytes) { check_pickle(bytes, "p"); };
  check(std::string("\x80\x02K\x05.", 5));
  // BINPUT 0, BINGET 0, MEMOIZE, then LONG_BINGET 1: every index names a filled slot.
  check(std::string("\x80\x02K\x05q\x00h\x00\x94j\x01\x00\x00\x00.", 15));
  // GLOBAL's two lines, a SHORT_BINUNICODE, a FRAME that fits.
  check(
      std::string("\x80\x04\x95\x0a\x00\x00\x00\x00\x00\x00\x00"
                  "cm\nf\n\x8c\x02hi.",
                  21));
  REQUIRE_THROWS_WITH_TYPE(check(std::string("\x80\x02X\x00\x00\xf0\x2a"
                                             "abc.",
                                             11)),
                           IoError, "p: a length of 720371712 with 4 bytes left at byte 2");
  REQUIRE_THROWS_WITH_TYPE(check(std::string("\x80\x02K\x05r\x00\x00\x00\x40.", 10)), IoError,
                           "memo index 1073741824 with 0 filled at byte 4");
  REQUIRE_THROWS_WITH_TYPE(check(std::string("\x80\x02h\x00.", 5)), IoError,
                           "memo index 0 with 0 filled");
  REQUIRE_THROWS_WITH_TYPE(check(std::string("\x80\x02\xff.", 4)), IoError,
                           "unknown opcode 0xff at byte 2");
  REQUIRE_THROWS_WITH_TYPE(check(std::string("\x80\x02K\x05", 4)), IoError,
                           "no STOP opcode at byte 4");
  REQUIRE_THROWS_WITH_TYPE(check(std::string("\x80\x02J\x05", 4)), IoError,
                           "an operand past the end");
  REQUIRE_THROWS_WITH_TYPE(check(std::string("\x80\x02"
                                             "cmod\nname.",
                                             12)),
                           IoError, "a line operand without its newline");
  REQUIRE_THROWS_WITH_TYPE(check(std::string("\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00.", 12)),
                           IoError, "a frame of 255 with 1 bytes left");
}

TEST_CASE("the checkpoint loader's fuzzing findings end in clear errors, fast", "[io][train]") {
  // tests/fuzz/README.md: the first three made LibTorch 1.13 allocate what the file declared
  // (704 MB, over 2 GB) or leak; the archive check now refuses them before LibTorch reads them.
  const std::string corpus = std::string(VITLAB_SOURCE_DIR) + "/tests/fuzz/corpus/checkpoint/";
  const std::pair<const char*, const char*> cases[] = {
      {"oom-data-pkl-string-length-704MB", "entry \"last.pt/data/1\": CRC-32 mismatch"},
      {"leak-record-crc-mismatch", "CRC-32 mismatch"},
      {"oom-rss-over-2GB", "not a valid LibTorch archive"},
      // Found in the check itself: a deflated record that inflates past its declared size, and an
      // end record counting 70 entries on its disk and 0 in all (LibTorch read 70 and leaked).
      {"leak-deflated-record-longer-than-declared", "holds more than its"},
      {"leak-end-record-counts-no-entries", "a multi-disk zip (or a broken end record)"},
  };
  for (const auto& [name, message] : cases) {
    INFO(name);
    REQUIRE_THROWS_WITH_TYPE(load_checkpoint(corpus + name), IoError, message);
  }
}
