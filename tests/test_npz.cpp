// .npy (strict header parsing, numpy's byte layout) and .npz (zip archives through libzip).
#include <cstdint>
#include <fstream>
#include <random>
#include <string>

#include "formats/npy.h"
#include "formats/npz.h"
#include "test_helpers.h"

#if VITLAB_HAVE_LIBZIP
#include <zip.h>
#endif

namespace {
using Catch::Matchers::Contains;
using vitlab::decode_npy;
using vitlab::IoError;
using vitlab::test::TempDir;

const char* kWhere = "ckpt.npz: entry \"w.npy\"";

// A .npy with the given header dict (a newline is appended) and data bytes.
std::string npy(const std::string& dict, const std::string& data, int major = 1) {
  const std::string h = dict + "\n";
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) out += static_cast<char>(h.size() >> (8 * i));
  return out + h + data;
}

std::string f32_bytes(std::initializer_list<float> values) {
  std::string s;
  for (float v : values) s.append(reinterpret_cast<const char*>(&v), 4);
  return s;
}

std::string npy_error(const std::string& bytes) {
  try {
    decode_npy(bytes, kWhere);
  } catch (const IoError& e) {
    return e.what();
  }
  FAIL("expected an IoError");
  return "";
}

std::vector<std::pair<std::string, torch::Tensor>> every_npy_dtype() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  out.emplace_back("Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel", torch::randn({4, 6}));
  out.emplace_back("f64", torch::randn({3}, torch::kDouble));
  out.emplace_back("f16", torch::randn({2, 2}).to(torch::kHalf));
  out.emplace_back("i64", torch::randint(-1000, 1000, {5}, torch::kLong));
  out.emplace_back("i32", torch::randint(-1000, 1000, {5}, torch::kInt));
  out.emplace_back("i16", torch::randint(-1000, 1000, {5}, torch::kShort));
  out.emplace_back("i8", torch::randint(-128, 128, {5}, torch::kChar));
  out.emplace_back("u8", torch::randint(0, 256, {5}, torch::kByte));
  out.emplace_back("bool", torch::randint(0, 2, {5}).to(torch::kBool));
  out.emplace_back("scalar", torch::tensor(7.5f));
  out.emplace_back("empty", torch::empty({0, 3}));
  out.emplace_back("transposed", torch::arange(6, torch::kFloat).reshape({2, 3}).t());
  return out;
}

[[maybe_unused]] void check_same(const std::vector<std::pair<std::string, torch::Tensor>>& got,
                                 const std::vector<std::pair<std::string, torch::Tensor>>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO(want[i].first);
    CHECK(got[i].first == want[i].first);
    CHECK(got[i].second.scalar_type() == want[i].second.scalar_type());
    CHECK(got[i].second.sizes() == want[i].second.sizes());
    CHECK(got[i].second.is_contiguous());
    CHECK(torch::equal(got[i].second, want[i].second));
  }
}
}  // namespace

TEST_CASE("npy encoding is numpy's byte layout", "[io]") {
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const std::string bytes = vitlab::encode_npy(torch::tensor({1.0f, 2.0f}), kWhere);
  CHECK(bytes == npy(dict + std::string(128 - 11 - dict.size(), ' '), f32_bytes({1, 2})));
  CHECK_THAT(vitlab::encode_npy(torch::zeros({2, 3}, torch::kLong), kWhere),
             Contains("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }"));
  CHECK_THAT(vitlab::encode_npy(torch::tensor(true), kWhere),
             Contains("{'descr': '|b1', 'fortran_order': False, 'shape': (), }"));
  REQUIRE_THROWS_WITH_TYPE(vitlab::encode_npy(torch::zeros({2}, torch::kBFloat16), kWhere), IoError,
                           "ckpt.npz: entry \"w.npy\": dtype BFloat16 has no .npy equivalent");
  for (const auto& [name, t] : every_npy_dtype()) {
    INFO(name);
    const torch::Tensor back = decode_npy(vitlab::encode_npy(t, name), name);
    CHECK((back.scalar_type() == t.scalar_type() && back.sizes() == t.sizes() &&
           torch::equal(back, t)));
    CHECK(vitlab::encode_npy(t, name).find('\n') % 64 == 63);  // data 64-byte aligned
  }
}

TEST_CASE("npy decoder accepts what numpy (old and new) writes", "[io]") {
  SECTION("fortran order is transposed into C order") {
    const auto t = decode_npy(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                                  f32_bytes({1, 4, 2, 5, 3, 6})),
                              kWhere);
    CHECK(t.is_contiguous());
    CHECK(torch::equal(t, torch::tensor({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}})));
  }
  SECTION("Python 2 longs, double quotes, no trailing comma, odd spacing") {
    const auto t =
        decode_npy(npy("{ \"shape\" : (1L, 2L) ,\"descr\":\"<f4\",'fortran_order':False}  ",
                       f32_bytes({1, 2})),
                   kWhere);
    CHECK(torch::equal(t, torch::tensor({{1.f, 2.f}})));
  }
  SECTION("versions 2.0 and 3.0 (4-byte header length)") {
    for (int v : {2, 3})
      CHECK(decode_npy(npy("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", "abc", v),
                       kWhere)
                .sizes() == torch::IntArrayRef{3});
  }
}

TEST_CASE("npy decoder rejects malformed headers and data with a precise message", "[io]") {
  const std::string d8 = f32_bytes({1, 2});
  const auto with = [&](const std::string& descr, const std::string& fortran,
                        const std::string& shape) {
    return "{'descr': " + descr + ", 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
  };
  const std::string good = with("'<f4'", "False", "(2,)");
  struct Case {
    const char* rule;
    std::string bytes, expect;
  };
  std::string bad_magic = npy(good, d8);
  bad_magic[1] = 'X';
  std::string long_header = npy(good, d8);
  long_header[8] = '\xff';
  std::string huge_header = npy(good, d8, 2);
  huge_header[10] = '\x01';  // 65536 + the real length
  const std::vector<Case> cases = {
      {"too short", "\x93NUMPY", "too short to be a .npy"},
      {"bad magic", bad_magic, "bad magic: not a .npy array"},
      {"bad version", npy(good, d8, 4), "unsupported .npy version 4.0"},
      {"header beyond entry", long_header, "header length 255 exceeds the entry"},
      {"header over the cap", huge_header, "exceeds the 65536-byte limit"},
      {"not a dict", npy("['descr']", d8), "header is not a Python dict"},
      {"unknown key", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", d8),
       "unknown key 'x'"},
      {"missing key", npy("{'descr': '<f4', 'shape': (2,)}", d8), "exactly the keys"},
      {"duplicate key",
       npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", d8),
       "duplicate key 'descr'"},
      {"unterminated string", npy("{'descr: 1}", d8), "unterminated string"},
      {"escape", npy("{'des\\x63r': '<f4'}", d8), "escape"},
      {"text after dict", npy(good + " 1", d8), "unexpected text after the dict"},
      {"missing comma", npy("{'descr': '<f4' 'shape': (2,)}", d8), "expected ',' or '}'"},
      {"fortran_order type", npy(with("'<f4'", "1", "(2,)"), d8),
       "'fortran_order' must be True or False"},
      {"int shape", npy(with("'<f4'", "False", "(2)"), d8), "'shape' is not a tuple"},
      {"list shape", npy(with("'<f4'", "False", "[2]"), d8), "'shape' must be a tuple of integers"},
      {"negative dim", npy(with("'<f4'", "False", "(-2,)"), d8), "negative dimension"},
      {"float dim", npy(with("'<f4'", "False", "(2.0,)"), d8),
       "'shape' must be a tuple of integers"},
      {"dim overflow", npy(with("'<f4'", "False", "(99999999999999999999,)"), d8),
       "too large for int64"},
      {"shape overflow", npy(with("'<f4'", "False", "(4294967296, 4294967296, 0)"), d8),
       "overflows"},
      {"big-endian", npy(with("'>f4'", "False", "(2,)"), d8), "descr '>f4' is big-endian"},
      {"object", npy(with("'|O'", "False", "(2,)"), d8), "object arrays"},
      {"structured", npy(with("[('a', '<f4')]", "False", "(2,)"), d8), "structured dtypes"},
      {"unsigned", npy(with("'<u4'", "False", "(2,)"), d8), "unsigned 16/32/64-bit"},
      {"void (bfloat16)", npy(with("'|V2'", "False", "(4,)"), d8), "raw/void data"},
      {"'|' on multi-byte", npy(with("'|f4'", "False", "(2,)"), d8), "byte order '|' is invalid"},
      {"no byte order", npy(with("'f4'", "False", "(2,)"), d8), "must start with byte order"},
      {"unknown type", npy(with("'<c8'", "False", "(2,)"), d8), "descr '<c8' is not supported"},
      {"size mismatch", npy(with("'<f4'", "False", "(3,)"), d8),
       ".npy data has 8 bytes but shape (3,) x f4 needs 12 bytes"},
      {"extra data", npy(good, d8 + "x"), ".npy data has 9 bytes"},
      {"bool bytes", npy(with("'|b1'", "False", "(2,)"), "\x01\x07"), "other than 0 and 1"},
  };
  for (const Case& c : cases) {
    INFO(c.rule);
    CHECK_THAT(npy_error(c.bytes), Contains(kWhere) && Contains(c.expect));
  }
}

TEST_CASE("npy files on disk", "[io]") {
  TempDir dir("vitlab-npy");
  const std::string path = dir.file("a.npy");
  vitlab::test::write_text(path, vitlab::encode_npy(torch::arange(5), path));
  CHECK(torch::equal(vitlab::read_npy_file(path), torch::arange(5)));
  vitlab::test::write_text(
      path, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", f32_bytes({1})));
  REQUIRE_THROWS_WITH_TYPE(vitlab::read_npy_file(path), IoError, path + ": .npy data has 4 bytes");
  REQUIRE_THROWS_WITH_TYPE(vitlab::read_npy_file(dir.file("none.npy")), IoError,
                           "none.npy: no such file");
}

#if VITLAB_HAVE_LIBZIP

namespace {
// Archives written by Python's zipfile exactly as numpy.savez / savez_compressed do (zip64 local
// headers via force_zip64): "Transformer/encoder_norm/bias" = float32 [1, 2] and "head/kernel" =
// int64 [[1, -2], [3, -4]].
const char* kSavez =
    "504b03042d0000000000000021009acaabe7ffffffffffffffff210014005472616e73666f726d65722f656e636f"
    "6465725f6e6f726d2f626961732e6e70790100100088000000000000008800000000000000934e554d5059010076"
    "007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c2027736861"
    "7065273a2028322c292c207d20202020202020202020202020202020202020202020202020202020202020202020"
    "20202020202020202020202020202020202020202020202020200a0000803f00000040504b03042d000000000000"
    "00210049b5e2e1ffffffffffffffff0f001400686561642f6b65726e656c2e6e707901001000a000000000000000"
    "a000000000000000934e554d5059010076007b276465736372273a20273c6938272c2027666f727472616e5f6f72"
    "646572273a2046616c73652c20277368617065273a2028322c2032292c207d202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0100"
    "000000000000feffffffffffffff0300000000000000fcffffffffffffff504b01022d032d000000000000002100"
    "9acaabe788000000880000002100000000000000000000008001000000005472616e73666f726d65722f656e636f"
    "6465725f6e6f726d2f626961732e6e7079504b01022d032d00000000000000210049b5e2e1a0000000a00000000f"
    "00000000000000000000008001db000000686561642f6b65726e656c2e6e7079504b050600000000020002008c00"
    "0000bc0100000000";
const char* kSavezCompressed =
    "504b03042d0000000800000021009acaabe7ffffffffffffffff210014005472616e73666f726d65722f656e636f"
    "6465725f6e6f726d2f626961732e6e70790100100088000000000000004c000000000000009bec17ea1b10c9c850"
    "c650ad9e925a9c5ca46ea5a06e9366a2aea3a09e965f54529498179f5f94920a12774bcc294e058a17672416a402"
    "f91a463a9a3a0ab50a14002e0686067b0606060700504b03042d00000008000000210049b5e2e1ffffffffffffff"
    "ff0f001400686561642f6b65726e656c2e6e707901001000a00000000000000053000000000000009bec17ea1b10"
    "c9c850c650ad9e925a9c5ca46ea5a06e9369a1aea3a09e965f54529498179f5f94920a12774bcc294e058a176724"
    "16a402f91a463a0a469a3a0ab50a64032e460608f8f71f0298a1fc3f503e00504b01022d032d0000000800000021"
    "009acaabe74c000000880000002100000000000000000000008001000000005472616e73666f726d65722f656e63"
    "6f6465725f6e6f726d2f626961732e6e7079504b01022d032d00000008000000210049b5e2e153000000a0000000"
    "0f000000000000000000000080019f000000686561642f6b65726e656c2e6e7079504b050600000000020002008c"
    "000000330100000000";

std::string unhex(const char* hex) {
  std::string out;
  for (const char* p = hex; p[0] && p[1]; p += 2)
    out += static_cast<char>(std::stoi(std::string(p, 2), nullptr, 16));
  return out;
}

// A zip of raw entries, written with libzip directly (so tests can plant anything inside).
void make_zip(const std::string& path,
              const std::vector<std::pair<std::string, std::string>>& entries,
              bool deflate = false) {
  int code = 0;
  zip_t* zip = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  REQUIRE(zip != nullptr);
  for (const auto& [name, bytes] : entries) {
    zip_source_t* src = zip_source_buffer(zip, bytes.data(), bytes.size(), 0);
    const zip_int64_t i = zip_file_add(zip, name.c_str(), src, ZIP_FL_ENC_UTF_8);
    REQUIRE(i >= 0);
    REQUIRE(zip_set_file_compression(zip, zip_uint64_t(i), deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE,
                                     0) == 0);
  }
  REQUIRE(zip_close(zip) == 0);
}

std::string npz_error(const std::string& path) {
  try {
    vitlab::read_npz(path);
  } catch (const IoError& e) {
    return e.what();
  }
  FAIL("expected an IoError reading " << path);
  return "";
}
}  // namespace

TEST_CASE("npz round-trips every .npy dtype in archive order", "[io]") {
  TempDir dir("vitlab-npz");
  const std::string path = dir.file("ckpt.npz");
  const auto arrays = every_npy_dtype();
  vitlab::write_npz(path, arrays);
  check_same(vitlab::read_npz(path).tensors, arrays);
  CHECK(vitlab::npz_available());

  vitlab::write_npz(path, {});
  CHECK(vitlab::read_npz(path).tensors.empty());

  const auto t = torch::zeros({2});
  REQUIRE_THROWS_WITH_TYPE(vitlab::write_npz(path, {{"a", t}, {"a", t}}), IoError,
                           "duplicate name");
  REQUIRE_THROWS_WITH_TYPE(vitlab::write_npz(path, {{"", t}}), IoError, "empty name");
  REQUIRE_THROWS_WITH_TYPE(vitlab::write_npz(path, {{"b", t.to(torch::kBFloat16)}}), IoError,
                           "cannot write array \"b\": dtype BFloat16 has no .npy equivalent");
}

TEST_CASE("npz reads archives as numpy.savez and savez_compressed write them", "[io]") {
  TempDir dir("vitlab-npz");
  for (const char* hex : {kSavez, kSavezCompressed}) {
    const std::string path = dir.file("numpy.npz");
    vitlab::test::write_text(path, unhex(hex));
    const auto npz = vitlab::read_npz(path);
    REQUIRE(npz.tensors.size() == 2);
    CHECK(npz.tensors[0].first == "Transformer/encoder_norm/bias");
    CHECK(torch::equal(*npz.find("Transformer/encoder_norm/bias"), torch::tensor({1.f, 2.f})));
    CHECK(torch::equal(*npz.find("head/kernel"), torch::tensor({{1, -2}, {3, -4}}, torch::kLong)));
  }
  const std::string path = dir.file("deflated.npz");
  make_zip(path, {{"x.npy", vitlab::encode_npy(torch::zeros({1000}), "x")}}, /*deflate=*/true);
  CHECK(torch::equal(vitlab::read_npz(path).tensors.at(0).second, torch::zeros({1000})));
}

TEST_CASE("npz reader rejects broken archives and entries, naming file and entry", "[io]") {
  TempDir dir("vitlab-npz");
  const std::string path = dir.file("ckpt.npz");
  const std::string f32 = vitlab::encode_npy(torch::tensor({1.f, 2.f, 3.f}), "");

  vitlab::test::write_text(path, "this is not a zip archive at all");
  CHECK_THAT(npz_error(path), Contains(path) && Contains("not a valid .npz (zip) archive"));

  vitlab::test::write_text(path, unhex(kSavez).substr(0, 400));
  CHECK_THAT(npz_error(path), Contains(path) && Contains("not a valid .npz (zip) archive"));

  // One data byte flipped in a stored entry: libzip's CRC check catches it at the end of the read.
  std::string corrupt = unhex(kSavez);
  corrupt[corrupt.find("\x93NUMPY") + 128] ^= 0x40;
  vitlab::test::write_text(path, corrupt);
  CHECK_THAT(
      npz_error(path),
      Contains("entry \"Transformer/encoder_norm/bias.npy\": read failed") && Contains("CRC"));

  make_zip(path, {{"readme.txt", "hello"}});
  CHECK_THAT(npz_error(path), Contains(path + ": entry \"readme.txt\": not a .npy array"));

  make_zip(path, {{"a.npy", f32}, {"Transformer/x/kernel.npy", "\x93NUMPX" + f32.substr(6)}});
  CHECK_THAT(npz_error(path), Contains(path + ": entry \"Transformer/x/kernel.npy\": bad magic"));

  make_zip(path, {{"a.npy", f32.substr(0, f32.size() - 4)}});
  CHECK_THAT(npz_error(path),
             Contains(path + ": entry \"a.npy\": .npy data has 8 bytes but shape (3,)"));

  // libzip will not write two entries of one name, so rename "b.npy" in a finished archive.
  make_zip(path, {{"a.npy", f32}, {"b.npy", f32}});
  std::string dup = vitlab::test::read_text(path);
  for (size_t at; (at = dup.find("b.npy")) != std::string::npos;) dup.replace(at, 5, "a.npy");
  vitlab::test::write_text(path, dup);
  CHECK_THAT(npz_error(path), Contains(path + ": entry \"a.npy\": duplicate entry name"));

  CHECK_THAT(npz_error(dir.file("none.npz")), Contains("none.npz: no such file"));
}

TEST_CASE("npz reader survives random corruption", "[io]") {
  // Every mutated archive must either load or throw IoError: no crash, no other exception.
  TempDir dir("vitlab-npz");
  const std::string path = dir.file("fuzz.npz");
  std::mt19937 rng(99);
  int rejected = 0;
  for (const char* hex : {kSavez, kSavezCompressed}) {
    const std::string original = unhex(hex);
    for (int iter = 0; iter < 1000; ++iter) {
      std::string bytes = original;
      if (iter % 2) {
        for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
      } else {
        bytes.resize(rng() % bytes.size());
      }
      vitlab::test::write_text(path, bytes);
      try {
        vitlab::read_npz(path);
      } catch (const IoError&) {
        ++rejected;
      }
    }
  }
  CHECK(rejected > 0);
}

#else

TEST_CASE("npz without libzip fails clearly", "[io]") {
  CHECK_FALSE(vitlab::npz_available());
  REQUIRE_THROWS_WITH_TYPE(vitlab::read_npz("x.npz"), IoError, "built without libzip");
}

#endif
