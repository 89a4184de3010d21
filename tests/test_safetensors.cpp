// safetensors: round trips, byte-exact agreement with the reference writer, and one hand-made bad
// file per validation rule.
#include <cstdint>
#include <random>
#include <string>

#include "formats/safetensors.h"
#include "test_helpers.h"

namespace {
using Catch::Matchers::Contains;
using vitlab::IoError;
using vitlab::read_safetensors;
using vitlab::write_safetensors;
using vitlab::test::TempDir;

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

std::string f32_bytes(std::initializer_list<float> values) {
  std::string s;
  for (float v : values) s.append(reinterpret_cast<const char*>(&v), 4);
  return s;
}

// Writes `le64(header size) + header + data` and returns the path.
std::string make_file(const TempDir& dir, const std::string& header, const std::string& data) {
  const std::string path = dir.file("model.safetensors");
  vitlab::test::write_text(path, le64(header.size()) + header + data);
  return path;
}

// The message of the IoError that reading `path` throws; fails the test on anything else.
std::string read_error(const std::string& path) {
  try {
    read_safetensors(path);
  } catch (const IoError& e) {
    return e.what();
  }
  FAIL("expected an IoError reading " << path);
  return "";
}

// A header naming one F32 tensor "a" with the given shape and offsets JSON.
std::string one(const std::string& shape, const std::string& offsets,
                const std::string& dtype = "F32") {
  return R"({"a":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offsets +
         "}}";
}

torch::Tensor sample(torch::ScalarType type, std::vector<int64_t> shape) {
  if (type == torch::kBool) return torch::randint(0, 2, shape).to(type);
  if (type == torch::kByte) return torch::randint(0, 256, shape).to(type);
  if (c10::isIntegralType(type, /*includeBool=*/false))
    return torch::randint(-128, 128, shape).to(type);
  return torch::randn(shape).to(type);
}
}  // namespace

TEST_CASE("safetensors round-trips every supported dtype, 0-d and empty tensors", "[io]") {
  TempDir dir("vitlab-st");
  std::vector<std::pair<std::string, torch::Tensor>> in;
  for (auto type : {torch::kBool, torch::kByte, torch::kChar, torch::kShort, torch::kHalf,
                    torch::kBFloat16, torch::kInt, torch::kFloat, torch::kDouble, torch::kLong})
    in.emplace_back(std::string("t_") + c10::toString(type), sample(type, {3, 5}));
  in.emplace_back("scalar", torch::tensor(2.5));
  in.emplace_back("empty", torch::empty({0, 4}, torch::kFloat));
  in.emplace_back("transposed",
                  torch::arange(6, torch::kFloat).reshape({2, 3}).t());  // non-contiguous
  const std::map<std::string, std::string> meta{{"format", "pt"}, {"note", "é \"quoted\"\n"}};
  const std::string path = dir.file("rt.safetensors");
  write_safetensors(path, in, meta);

  const auto out = read_safetensors(path);
  CHECK(out.metadata == meta);
  REQUIRE(out.tensors.size() == in.size());
  for (const auto& [name, t] : in) {
    INFO(name);
    const torch::Tensor* got = out.find(name);
    REQUIRE(got != nullptr);
    CHECK(got->scalar_type() == t.scalar_type());
    CHECK(got->sizes() == t.sizes());
    CHECK(got->is_contiguous());
    CHECK(torch::equal(*got, t));
  }
  CHECK(out.find("scalar")->dim() == 0);
}

TEST_CASE("safetensors writer matches the reference layout byte for byte", "[io]") {
  TempDir dir("vitlab-st");
  const std::string path = dir.file("w.safetensors");

  SECTION("one F32 tensor: header padded with spaces to 8 bytes") {
    write_safetensors(path, {{"a", torch::tensor({1.0f, 2.0f})}}, {});
    const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    REQUIRE(header.size() == 54);
    CHECK(vitlab::test::read_text(path) == le64(56) + header + "  " + f32_bytes({1, 2}));
  }
  SECTION("the reference's own test vectors (safetensors/src/tensor.rs)") {
    write_safetensors(path, {{"attn.0", torch::arange(6, torch::kFloat).reshape({1, 2, 3})}}, {});
    CHECK(vitlab::test::read_text(path) ==
          le64(64) + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})" +
              f32_bytes({0, 1, 2, 3, 4, 5}));
    write_safetensors(path, {}, {});
    CHECK(vitlab::test::read_text(path) == le64(8) + "{}      ");
    write_safetensors(path, {}, {{"framework", "pt"}});
    CHECK(vitlab::test::read_text(path) ==
          le64(40) + R"({"__metadata__":{"framework":"pt"}})" + "     ");
  }
  SECTION("data ordered by dtype (widest first) then name; __metadata__ first") {
    write_safetensors(path,
                      {{"b", torch::zeros({1})},
                       {"d", torch::ones({1}, torch::kBool)},
                       {"a", torch::zeros({1})},
                       {"c", torch::ones({1}, torch::kLong)}},
                      {{"k", "v"}});
    const std::string header =
        R"({"__metadata__":{"k":"v"},"c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
        R"("a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
        R"("b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]},)"
        R"("d":{"dtype":"BOOL","shape":[1],"data_offsets":[16,17]}})";
    const std::string file = vitlab::test::read_text(path);
    const size_t n = (header.size() + 7) / 8 * 8;
    CHECK(file.substr(0, 8 + header.size()) == le64(n) + header);
    CHECK(file.size() == 8 + n + 17);
    std::vector<std::string> names;
    for (const auto& [name, t] : read_safetensors(path).tensors) names.push_back(name);
    CHECK(names == std::vector<std::string>{"c", "a", "b", "d"});
  }
}

TEST_CASE("safetensors writer rejects what it cannot store", "[io]") {
  TempDir dir("vitlab-st");
  const std::string path = dir.file("bad.safetensors");
  const auto t = torch::zeros({2});
  REQUIRE_THROWS_WITH_TYPE(write_safetensors(path, {{"a", t}, {"a", t}}, {}), IoError,
                           "duplicate name");
  REQUIRE_THROWS_WITH_TYPE(write_safetensors(path, {{"__metadata__", t}}, {}), IoError, "reserved");
  REQUIRE_THROWS_WITH_TYPE(write_safetensors(path, {{"u", torch::Tensor()}}, {}), IoError,
                           "undefined");
  REQUIRE_THROWS_WITH_TYPE(
      write_safetensors(path, {{"c", torch::zeros({2}, torch::kComplexFloat)}}, {}), IoError,
      "no safetensors equivalent");
  REQUIRE_THROWS_WITH_TYPE(write_safetensors(path, {{"\xff", t}}, {}), IoError, "not valid UTF-8");
  CHECK(std::filesystem::is_empty(dir.path()));  // nothing half-written left behind
}

TEST_CASE("safetensors reader rejects each malformed file with a precise message", "[io]") {
  TempDir dir("vitlab-st");
  const std::string ok_data = f32_bytes({1, 2});
  std::string many_ones = "[1";  // a shape of 65 ones
  for (int i = 0; i < 64; ++i) many_ones += ",1";
  many_ones += "]";
  // Each case: header, data section, expected message fragment.
  struct Case {
    const char* rule;
    std::string header, data, expect;
  };
  const std::vector<Case> cases = {
      {"invalid JSON", R"({"a":{"dtype":)", "", "header is not valid JSON"},
      {"invalid UTF-8", "{\"\xff\":1}", "", "header is not valid JSON"},
      {"not an object", "[1, 2]", "", "header is not a JSON object"},
      {"leading space", " {}", "", "header is not a JSON object"},
      {"entry not an object", R"({"a":5})", "", R"(tensor "a": entry is not a JSON object)"},
      {"unknown key", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", ok_data,
       R"(tensor "a": unknown key "x")"},
      {"missing key", R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", ok_data,
       R"(tensor "a": missing key "shape")"},
      {"dtype type", R"({"a":{"dtype":3,"shape":[2],"data_offsets":[0,8]}})", ok_data,
       "dtype is not a string"},
      {"unknown dtype", one("[2]", "[0,8]", "F33"), ok_data, R"(tensor "a": unknown dtype "F33")"},
      {"unsupported dtype", one("[2]", "[0,4]", "U16"), f32_bytes({1}),
       "dtype U16 is not supported"},
      {"negative dim", one("[-1]", "[0,0]"), "", "shape has a negative value -1"},
      {"fractional dim", one("[1.5]", "[0,0]"), "",
       "shape must contain only non-negative integers"},
      {"dim beyond int64", one("[9223372036854775808]", "[0,0]"), "", "too large"},
      {"shape overflow", one("[4294967296,4294967296,4]", "[0,0]"), "", "overflows"},
      {"shape overflow before a zero", one("[4294967296,4294967296,0]", "[0,0]"), "", "overflows"},
      {"too many dims", one(many_ones, "[0,4]"), f32_bytes({1}), "more than 64 elements"},
      {"nested shape", one("[[2]]", "[0,8]"), ok_data, "nests deeper"},
      {"offsets not a pair", one("[2]", "[0]"), ok_data,
       "data_offsets is not an array of two integers"},
      {"begin after end", one("[0]", "[8,0]"), ok_data, "data_offsets [8, 0]: begin is after end"},
      {"size mismatch",
       R"({"blocks.0.attn.qkv.weight":{"dtype":"F32","shape":[3,4],"data_offsets":[0,100]}})",
       std::string(100, '\0'),
       R"(tensor "blocks.0.attn.qkv.weight": data_offsets [0, 100] do not match shape [3, 4] x F32 = 48 bytes)"},
      {"offsets outside data", one("[2]", "[8,16]"), ok_data,
       "data_offsets [8, 16] extend past the end of the data section (8 bytes"},
      {"truncated data", one("[2]", "[0,8]"), f32_bytes({1}),
       "data_offsets [0, 8] extend past the end of the data section (4 bytes; truncated file?)"},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       f32_bytes({1, 2, 3}), R"(tensor "b": data_offsets [4, 12] overlap tensor "a" [0, 8])"},
      {"gap",
       R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
       f32_bytes({1, 2, 3}), R"(tensor "b": data_offsets [8, 12] leave a gap)"},
      {"trailing bytes", one("[1]", "[0,4]"), ok_data,
       "data section has 8 bytes but the tensors cover only 4"},
      {"duplicate names",
       R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       ok_data, R"(tensor "a": duplicate tensor name)"},
      {"duplicate field", R"({"a":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}})",
       ok_data, R"(tensor "a": duplicate key "dtype")"},
      {"duplicate metadata", R"({"__metadata__":{},"__metadata__":{}})", "",
       R"(duplicate "__metadata__")"},
      {"metadata value", R"({"__metadata__":{"k":1}})", "",
       R"("__metadata__" value for "k" is not a string)"},
      {"metadata type", R"({"__metadata__":[]})", "", R"("__metadata__" is not a JSON object)"},
      {"bool bytes", one("[2]", "[0,2]", "BOOL"), std::string("\x01\x02", 2), "other than 0 and 1"},
  };
  for (const Case& c : cases) {
    INFO(c.rule << ": " << c.header);
    const std::string msg = read_error(make_file(dir, c.header, c.data));
    CHECK_THAT(msg, Contains("model.safetensors: ") && Contains(c.expect));
  }
}

TEST_CASE("safetensors reader rejects bad header lengths before allocating", "[io]") {
  TempDir dir("vitlab-st");
  const std::string path = dir.file("model.safetensors");
  vitlab::test::write_text(path, le64(1000) + "{}");
  CHECK_THAT(read_error(path),
             Contains(path) && Contains("header length 1000 exceeds the file size"));
  vitlab::test::write_text(path, le64(uint64_t(1) << 63) + "{}");
  CHECK_THAT(read_error(path), Contains(path) && Contains("exceeds the 100000000-byte limit"));
  vitlab::test::write_text(path, "abc");
  CHECK_THAT(read_error(path), Contains(path) && Contains("fewer than the 8-byte header length"));
  CHECK_THAT(read_error(dir.file("missing.safetensors")),
             Contains("missing.safetensors: no such file"));
  CHECK_THAT(read_error(dir.path().string()), Contains("not a regular file"));
}

TEST_CASE("safetensors reader accepts a valid hand-made file with zero-size tensors", "[io]") {
  TempDir dir("vitlab-st");
  const std::string path = make_file(
      dir,
      R"({"z":{"dtype":"I64","shape":[0,3],"data_offsets":[0,0]},"a":{"data_offsets":[0,8],"shape":[2],"dtype":"F32"},)"
      R"("__metadata__":null}  )",
      f32_bytes({1, 2}));
  const auto file = read_safetensors(path);
  REQUIRE(file.tensors.size() == 2);
  CHECK(file.tensors[0].first == "z");
  CHECK(file.tensors[0].second.sizes() == torch::IntArrayRef{0, 3});
  CHECK(torch::equal(*file.find("a"), torch::tensor({1.0f, 2.0f})));
  CHECK(file.metadata.empty());
}

TEST_CASE("safetensors reader survives random corruption", "[io]") {
  // Every mutated file must either load or throw IoError: no crash, no other exception.
  TempDir dir("vitlab-st");
  const std::string path = dir.file("fuzz.safetensors");
  write_safetensors(
      path,
      {{"w", torch::randn({3, 4})}, {"b", torch::ones({2}, torch::kBool)}, {"i", torch::arange(3)}},
      {{"k", "v"}});
  const std::string original = vitlab::test::read_text(path);
  std::mt19937 rng(1234);
  int loaded = 0, rejected = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::string bytes = original;
    const int kind = iter % 3;
    if (kind == 0) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    } else if (kind == 1) {
      bytes.resize(rng() % bytes.size());
    } else {  // a digit or punctuation in the header changed: hits the validation paths
      const size_t at = 8 + rng() % (bytes.size() - 8 - 24);
      bytes[at] = "0123456789[]{},:\"-."[rng() % 19];
    }
    vitlab::test::write_text(path, bytes);
    try {
      read_safetensors(path);
      ++loaded;
    } catch (const IoError&) {
      ++rejected;
    }
  }
  CHECK(rejected > 0);
  CHECK(loaded > 0);
}
