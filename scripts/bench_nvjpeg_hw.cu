// nvJPEG's decoders on the GPU machine, for issue 22's question of what nvJPEG gives against the
// CPU threads: the A100/H100/H200 hardware JPEG engines (NVJPEG_BACKEND_HARDWARE) and the CUDA
// decoder (NVJPEG_BACKEND_GPU_HYBRID), each through the batched API on full-size images, and how
// much each slows a compute-bound kernel running beside it (the training step's share of the SMs).
// A standalone tool, not part of vitlab (whose CPU build must not need the CUDA toolkit):
//
//   nvcc -O2 -std=c++17 -o /tmp/bench_nvjpeg_hw scripts/bench_nvjpeg_hw.cu -lnvjpeg
//   /tmp/bench_nvjpeg_hw FOLDER [IMAGES] [BATCH] [PASSES]   (FOLDER/train/<class>/*.jpg;
//                                                             defaults 2048, 256, 4)
//
// Prints one JSON object: per backend the images decoded per second (full size, RGB interleaved,
// batches of BATCH, PASSES passes over the images after one warm-up batch), the images it could
// not take, and the busy
// kernel's time beside it over its time alone.
#include <cuda_runtime.h>
#include <nvjpeg.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

#define CHECK_CUDA(x)                                                                       \
  do {                                                                                      \
    cudaError_t e = (x);                                                                    \
    if (e != cudaSuccess) { std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e)); std::exit(1); } \
  } while (0)
#define CHECK_NVJPEG(x)                                                                     \
  do {                                                                                      \
    nvjpegStatus_t s = (x);                                                                 \
    if (s != NVJPEG_STATUS_SUCCESS) { std::fprintf(stderr, "%s: status %d\n", #x, int(s)); return false; } \
  } while (0)

using Clock = std::chrono::steady_clock;
static double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A kernel that keeps every SM busy with dependent FMAs: the stand-in for a training step.
__global__ void busy(float* out, int iterations) {
  float a = threadIdx.x * 1e-3f, b = 1.0001f;
  for (int i = 0; i < iterations; ++i) a = fmaf(a, b, 1e-7f);
  out[blockIdx.x * blockDim.x + threadIdx.x] = a;
}

struct Busy {
  float* out = nullptr;
  int blocks = 0;
  cudaStream_t stream{};
  Busy() {
    int sms = 0;
    CHECK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    blocks = sms * 8;
    CHECK_CUDA(cudaMalloc(&out, sizeof(float) * blocks * 256));
    CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  }
  double run(int launches) {  // seconds for `launches` kernels
    const auto t = Clock::now();
    for (int i = 0; i < launches; ++i) busy<<<blocks, 256, 0, stream>>>(out, 20000);
    CHECK_CUDA(cudaStreamSynchronize(stream));
    return seconds_since(t);
  }
};

struct Result {
  bool ok = false;
  double images_per_second = 0;
  int unsupported = 0;
  double busy_slowdown = 0;
};

// Decodes `files` in batches on `backend`; while `beside` is set, the busy kernel runs on its
// own stream and its slowdown is measured.
static bool decode_all(nvjpegBackend_t backend, const std::vector<std::vector<unsigned char>>& files,
                       int batch, int passes, Busy& busy_kernel, double busy_alone, Result& r) {
  nvjpegHandle_t handle;
  CHECK_NVJPEG(nvjpegCreateEx(backend, nullptr, nullptr, 0, &handle));
  nvjpegJpegState_t state;
  CHECK_NVJPEG(nvjpegJpegStateCreate(handle, &state));
  nvjpegJpegStream_t parsed;
  CHECK_NVJPEG(nvjpegJpegStreamCreate(handle, &parsed));
  std::vector<const unsigned char*> data;
  std::vector<size_t> lengths;
  std::vector<nvjpegImage_t> outputs;
  for (const auto& f : files) {
    int components = 0, widths[NVJPEG_MAX_COMPONENT], heights[NVJPEG_MAX_COMPONENT];
    nvjpegChromaSubsampling_t subsampling;
    CHECK_NVJPEG(nvjpegGetImageInfo(handle, f.data(), f.size(), &components, &subsampling, widths, heights));
    if (backend == NVJPEG_BACKEND_HARDWARE) {
      int supported = -1;  // 0: the hardware takes it
      CHECK_NVJPEG(nvjpegJpegStreamParseHeader(handle, f.data(), f.size(), parsed));
      CHECK_NVJPEG(nvjpegDecodeBatchedSupported(handle, parsed, &supported));
      if (supported != 0) { ++r.unsupported; continue; }
    }
    nvjpegImage_t image{};
    image.pitch[0] = size_t(widths[0]) * 3;
    CHECK_CUDA(cudaMalloc(&image.channel[0], image.pitch[0] * heights[0]));
    data.push_back(f.data());
    lengths.push_back(f.size());
    outputs.push_back(image);
  }
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CHECK_NVJPEG(nvjpegDecodeBatchedInitialize(handle, state, batch, 1, NVJPEG_OUTPUT_RGBI));
  const int n = int(data.size()) / batch * batch;
  if (n == 0) {
    std::fprintf(stderr, "fewer images than one batch of %d\n", batch);
    return false;
  }
  auto decode = [&](int first) {
    return nvjpegDecodeBatched(handle, state, data.data() + first, lengths.data() + first,
                               outputs.data() + first, stream);
  };
  CHECK_NVJPEG(decode(0));  // warm-up
  CHECK_CUDA(cudaStreamSynchronize(stream));
  const auto t = Clock::now();
  for (int pass = 0; pass < passes; ++pass)
    for (int first = 0; first < n; first += batch) CHECK_NVJPEG(decode(first));
  CHECK_CUDA(cudaStreamSynchronize(stream));
  r.images_per_second = double(n) * passes / seconds_since(t);
  // The busy kernel beside a decoding loop that outlasts it.
  std::atomic<bool> stop{false};
  std::thread decoder([&] {
    for (int first = 0; !stop; first = (first + batch) % n) {
      if (decode(first) != NVJPEG_STATUS_SUCCESS) break;
      cudaStreamSynchronize(stream);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  r.busy_slowdown = busy_kernel.run(50) / busy_alone;
  stop = true;
  decoder.join();
  for (auto& o : outputs) cudaFree(o.channel[0]);
  nvjpegJpegStreamDestroy(parsed);
  nvjpegJpegStateDestroy(state);
  nvjpegDestroy(handle);
  r.ok = true;
  return true;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_nvjpeg_hw FOLDER [IMAGES] [BATCH] [PASSES]\n");
    return 2;
  }
  const int images = argc > 2 ? std::atoi(argv[2]) : 2048, batch = argc > 3 ? std::atoi(argv[3]) : 256;
  const int passes = argc > 4 ? std::atoi(argv[4]) : 4;
  std::vector<std::string> paths;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(argv[1]) / "train"))
    if (e.path().extension() == ".jpg") paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());
  paths.resize(std::min<size_t>(paths.size(), images));
  std::vector<std::vector<unsigned char>> files;
  for (const auto& p : paths) {
    std::ifstream in(p, std::ios::binary);
    files.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  Busy busy_kernel;
  busy_kernel.run(5);
  const double alone = busy_kernel.run(50);
  std::printf("{\"images\": %zu, \"batch\": %d, \"busy_alone_s\": %.4f", files.size(), batch, alone);
  const std::pair<const char*, nvjpegBackend_t> backends[] = {
      {"hardware", NVJPEG_BACKEND_HARDWARE}, {"gpu_hybrid", NVJPEG_BACKEND_GPU_HYBRID}};
  for (const auto& [name, backend] : backends) {
    Result r;
    decode_all(backend, files, batch, passes, busy_kernel, alone, r);
    if (!r.ok) std::printf(", \"%s\": null", name);
    else
      std::printf(", \"%s\": {\"images_per_second\": %.1f, \"unsupported\": %d, \"busy_slowdown\": %.3f}",
                  name, r.images_per_second, r.unsupported, r.busy_slowdown);
  }
  std::printf("}\n");
  return 0;
}
