// Portable random numbers for everything the data layer draws (subsets, epoch order,
// augmentation parameters, synthetic images).
//
// Why not std::uniform_int_distribution / std::gamma_distribution or torch::randperm? Their
// algorithms are implementation-defined (libstdc++ vs libc++) or may change between LibTorch
// versions. std::mt19937_64's raw output is fixed by the C++ standard, so building every draw on
// it with the functions below gives bit-identical indices on every machine and LibTorch version.
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace vitlab {

// SplitMix64 finaliser: turns (seed, stream) pairs into well-mixed, independent engine seeds.
inline uint64_t mix_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform integer in [0, n) without modulo bias (rejection from the top of the range). n > 0.
inline uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // largest multiple of n, exclusive
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

// Uniform double in [0, 1) from the top 53 bits.
inline double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}

// Standard normal by Box-Muller; the second value is discarded so the engine is the whole state.
inline double standard_normal(std::mt19937_64& rng) {
  const double u1 = 1.0 - uniform01(rng);  // (0, 1]: log is finite
  const double u2 = uniform01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// Gamma(shape, 1) by Marsaglia-Tsang; shape < 1 uses the boost Gamma(shape+1) * U^(1/shape).
inline double gamma_draw(std::mt19937_64& rng, double shape) {
  if (shape < 1.0) {
    const double u = 1.0 - uniform01(rng);
    return gamma_draw(rng, shape + 1.0) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x, v;
    do {
      x = standard_normal(rng);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = 1.0 - uniform01(rng);
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

// Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
inline double beta_draw(std::mt19937_64& rng, double a, double b) {
  const double x = gamma_draw(rng, a);
  const double y = gamma_draw(rng, b);
  return x + y > 0.0 ? x / (x + y) : 0.5;
}

// In-place Fisher-Yates shuffle.
template <typename T>
void fisher_yates(std::vector<T>& values, std::mt19937_64& rng) {
  for (size_t i = values.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(uniform_below(rng, i));
    std::swap(values[i - 1], values[j]);
  }
}

}  // namespace vitlab
