#include "weights/weights_jax.h"

#include <map>

#include "core/error.h"

namespace vitlab {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// Parses a decimal index at s[pos...] up to `stop` (or the end); -1 if not a plain number.
int64_t parse_index(const std::string& s, size_t pos, size_t* end, char stop = '/') {
  size_t i = pos;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == pos || i - pos > 6 || (i < s.size() && s[i] != stop)) return -1;
  if (end) *end = i;
  return std::stoll(s.substr(pos, i - pos));
}

class Converter {
 public:
  Converter(std::string source, std::string prefix)
      : source_(std::move(source)), prefix_(std::move(prefix)) {}

  void convert(const std::string& name, const torch::Tensor& t);
  SourcedTensors finish();
  std::string dialect() const { return big_vision_ ? "big_vision" : "vit_jax"; }
  void set_big_vision(bool v) { big_vision_ = v; }

 private:
  [[noreturn]] void bad_shape(const std::string& name, const torch::Tensor& t,
                              const std::string& expected) const {
    fail<IoError>("{}: entry \"{}\" has shape {}; expected {}", source_, full(name), shape_str(t),
                  expected);
  }
  void emit(const std::string& to, torch::Tensor t, const std::string& from) {
    for (const auto& o : out_)
      if (o.name == to)
        fail<IoError>("{}: entries \"{}\" and \"{}\" both map to {}", source_, o.origin,
                      full(from), to);
    out_.push_back({to, std::move(t), full(from)});
  }
  torch::Tensor hwio(const std::string& name, const torch::Tensor& t) const {
    if (t.dim() != 4) bad_shape(name, t, "a 4-D (kh, kw, in, out) convolution kernel");
    return t.permute({3, 2, 0, 1}).contiguous();  // -> (out, in, kh, kw)
  }
  torch::Tensor dense(const std::string& name, const torch::Tensor& t) const {
    if (t.dim() != 2) bad_shape(name, t, "a 2-D (in, out) dense kernel");
    return t.t().contiguous();  // -> (out, in)
  }
  torch::Tensor vector(const std::string& name, const torch::Tensor& t) const {
    // GroupNorm/LayerNorm parameters; old flax checkpoints store GroupNorm's as (1, 1, 1, C).
    for (int64_t d = 0; d + 1 < t.dim(); ++d)
      if (t.size(d) != 1) bad_shape(name, t, "a vector (C) or (1, 1, 1, C)");
    if (t.dim() == 0) bad_shape(name, t, "a vector");
    return t.reshape({-1});
  }
  void convert_block(int64_t i, const std::string& rest, const std::string& name,
                     const torch::Tensor& t);
  void convert_resnet_unit(const std::string& prefix, const std::string& rest,
                           const std::string& name, const torch::Tensor& t);

  std::string full(const std::string& name) const { return prefix_ + name; }  // for messages

  std::string source_, prefix_;
  bool big_vision_ = false;
  SourcedTensors out_;
  // Attention q/k/v parts per block: "query/kernel" -> (entry name, tensor).
  std::map<int64_t, std::map<std::string, std::pair<std::string, torch::Tensor>>> qkv_;
};

void Converter::convert(const std::string& name, const torch::Tensor& t) {
  const std::string block = "Transformer/encoderblock_";
  if (name == "embedding/kernel") return emit("patch_embed.proj.weight", hwio(name, t), name);
  if (name == "embedding/bias") return emit("patch_embed.proj.bias", vector(name, t), name);
  if (name == "cls") {
    if (t.dim() != 3) bad_shape(name, t, "(1, 1, D)");
    return emit("cls_token", t, name);
  }
  if (name == "Transformer/posembed_input/pos_embedding" || name == "pos_embedding") {
    if (t.dim() != 3) bad_shape(name, t, "(1, tokens, D)");
    return emit("pos_embed", t, name);
  }
  if (name == "Transformer/encoder_norm/scale") return emit("norm.weight", vector(name, t), name);
  if (name == "Transformer/encoder_norm/bias") return emit("norm.bias", vector(name, t), name);
  if (name == "head/kernel") return emit("head.weight", dense(name, t), name);
  if (name == "head/bias") return emit("head.bias", vector(name, t), name);
  if (name == "pre_logits/kernel") return emit("pre_logits.weight", dense(name, t), name);
  if (name == "pre_logits/bias") return emit("pre_logits.bias", vector(name, t), name);
  if (name == "conv_root/kernel")
    return emit("patch_embed.backbone.stem.conv.weight", hwio(name, t), name);
  if (name == "gn_root/scale")
    return emit("patch_embed.backbone.stem.norm.weight", vector(name, t), name);
  if (name == "gn_root/bias")
    return emit("patch_embed.backbone.stem.norm.bias", vector(name, t), name);
  if (starts_with(name, "Transformer/encoderblock/")) {
    // big_vision scanned layers: one entry per parameter with a leading depth axis.
    big_vision_ = true;
    if (t.dim() < 1) bad_shape(name, t, "a leading layer axis");
    const std::string rest = name.substr(std::string("Transformer/encoderblock/").size());
    for (int64_t i = 0; i < t.size(0); ++i) convert_block(i, rest, name, t[i]);
    return;
  }
  size_t end = 0;
  if (starts_with(name, block)) {
    const int64_t i = parse_index(name, block.size(), &end);
    if (i >= 0) return convert_block(i, name.substr(end + 1), name, t);
  }
  if (starts_with(name, "block")) {
    size_t s_end = 0, u_end = 0;
    const int64_t s = parse_index(name, 5, &s_end);
    if (s >= 1 && name.compare(s_end, 5, "/unit") == 0) {
      const int64_t u = parse_index(name, s_end + 5, &u_end);
      if (u >= 1)
        return convert_resnet_unit(
            fmt::format("patch_embed.backbone.stages.{}.blocks.{}.", s - 1, u - 1),
            name.substr(u_end + 1), name, t);
    }
  }
  fail<IoError>("{}: entry \"{}\" is not a vit_jax / big_vision ViT parameter name", source_,
                full(name));
}

void Converter::convert_block(int64_t i, const std::string& rest, const std::string& name,
                              const torch::Tensor& t) {
  const std::string to = fmt::format("blocks.{}.", i);
  static const std::map<std::string, std::string> norms = {
      {"LayerNorm_0/scale", "norm1.weight"}, {"LayerNorm_0/bias", "norm1.bias"},
      {"LayerNorm_1/scale", "norm2.weight"}, {"LayerNorm_1/bias", "norm2.bias"},  // big_vision
      {"LayerNorm_2/scale", "norm2.weight"}, {"LayerNorm_2/bias", "norm2.bias"}};  // vit_jax
  if (auto it = norms.find(rest); it != norms.end()) return emit(to + it->second, vector(name, t), name);
  for (const char* mlp : {"MlpBlock_3/", "MlpBlock_0/"}) {
    if (!starts_with(rest, mlp)) continue;
    const std::string part = rest.substr(11);
    if (part == "Dense_0/kernel") return emit(to + "mlp.fc1.weight", dense(name, t), name);
    if (part == "Dense_0/bias") return emit(to + "mlp.fc1.bias", vector(name, t), name);
    if (part == "Dense_1/kernel") return emit(to + "mlp.fc2.weight", dense(name, t), name);
    if (part == "Dense_1/bias") return emit(to + "mlp.fc2.bias", vector(name, t), name);
  }
  for (const char* mha : {"MultiHeadDotProductAttention_1/", "MultiHeadDotProductAttention_0/"}) {
    if (!starts_with(rest, mha)) continue;
    const std::string part = rest.substr(std::string(mha).size());
    if (part == "out/kernel") {
      if (t.dim() != 3) bad_shape(name, t, "(heads, head_dim, D)");
      return emit(to + "attn.proj.weight", t.reshape({t.size(0) * t.size(1), t.size(2)}).t().contiguous(),
                  name);
    }
    if (part == "out/bias") return emit(to + "attn.proj.bias", vector(name, t), name);
    for (const char* p : {"query/kernel", "key/kernel", "value/kernel", "query/bias", "key/bias",
                          "value/bias"}) {
      if (part != p) continue;
      const bool kernel = part.find("kernel") != std::string::npos;
      if (kernel && t.dim() != 3) bad_shape(name, t, "(D, heads, head_dim)");
      if (!kernel && t.dim() != 2) bad_shape(name, t, "(heads, head_dim)");
      if (qkv_[i].count(part)) fail<IoError>("{}: two entries for block {} {}", source_, i, part);
      qkv_[i][part] = {full(name), t};
      return;
    }
  }
  fail<IoError>("{}: entry \"{}\" is not a vit_jax / big_vision encoder-block parameter name",
                source_, full(name));
}

void Converter::convert_resnet_unit(const std::string& prefix, const std::string& rest,
                                    const std::string& name, const torch::Tensor& t) {
  static const std::map<std::string, std::string> convs = {
      {"conv1/kernel", "conv1.weight"}, {"conv2/kernel", "conv2.weight"},
      {"conv3/kernel", "conv3.weight"}, {"conv_proj/kernel", "downsample.conv.weight"}};
  static const std::map<std::string, std::string> norms = {
      {"gn1/scale", "norm1.weight"},  {"gn1/bias", "norm1.bias"},
      {"gn2/scale", "norm2.weight"},  {"gn2/bias", "norm2.bias"},
      {"gn3/scale", "norm3.weight"},  {"gn3/bias", "norm3.bias"},
      {"gn_proj/scale", "downsample.norm.weight"}, {"gn_proj/bias", "downsample.norm.bias"}};
  if (auto it = convs.find(rest); it != convs.end()) return emit(prefix + it->second, hwio(name, t), name);
  if (auto it = norms.find(rest); it != norms.end()) return emit(prefix + it->second, vector(name, t), name);
  fail<IoError>("{}: entry \"{}\" is not a vit_jax hybrid ResNet parameter name", source_,
                full(name));
}

SourcedTensors Converter::finish() {
  // q, k and v become timm's fused qkv projection, rows in that order.
  for (auto& [i, parts] : qkv_) {
    const std::string to = fmt::format("blocks.{}.attn.qkv.", i);
    for (const char* kind : {"kernel", "bias"}) {
      std::vector<torch::Tensor> rows;
      std::string origin;
      int present = 0;
      for (const char* p : {"query", "key", "value"}) present += parts.count(std::string(p) + "/" + kind);
      if (present == 0 && std::string(kind) == "bias") continue;  // use_bias=False
      for (const char* p : {"query", "key", "value"}) {
        const std::string key = std::string(p) + "/" + kind;
        auto it = parts.find(key);
        if (it == parts.end())
          fail<IoError>("{}: block {} has attention {} entries but lacks {}", source_, i, kind, key);
        const auto& [entry, t] = it->second;
        origin += (origin.empty() ? "" : ", ") + entry;
        // kernel (D, H, d) -> (H*d, D); bias (H, d) -> (H*d)
        rows.push_back(std::string(kind) == "kernel"
                           ? t.reshape({t.size(0), t.size(1) * t.size(2)}).t()
                           : t.reshape({-1}));
      }
      for (size_t r = 1; r < rows.size(); ++r)
        if (!rows[r].sizes().equals(rows[0].sizes()))
          fail<IoError>("{}: block {}: query, key and value {}s differ in shape", source_, i, kind);
      out_.push_back({to + (std::string(kind) == "kernel" ? "weight" : "bias"),
                      torch::cat(rows, 0).contiguous(), origin});
    }
  }
  return std::move(out_);
}

}  // namespace

JaxConversion jax_to_timm(const NamedTensors& entries, const std::string& source) {
  JaxConversion result;
  auto has = [&](const std::string& name) {
    for (const auto& e : entries)
      if (e.first == name) return true;
    return false;
  };
  for (const char* prefix : {"opt/target/", "params/img/", "params/"}) {
    if (has(std::string(prefix) + "embedding/kernel")) {
      result.prefix = prefix;
      break;
    }
  }
  Converter converter(source, result.prefix);
  if (starts_with(result.prefix, "params/")) converter.set_big_vision(true);
  for (const auto& [name, tensor] : entries) {
    if (!result.prefix.empty() && !starts_with(name, result.prefix)) {
      ++result.skipped;  // optimiser state or another tower of the same file
      continue;
    }
    const std::string local = name.substr(result.prefix.size());
    if (local == "pos_embedding") converter.set_big_vision(true);
    converter.convert(local, tensor);
  }
  result.dialect = converter.dialect();
  result.tensors = converter.finish();
  return result;
}

}  // namespace vitlab
