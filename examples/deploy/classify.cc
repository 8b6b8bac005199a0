// Classify one image with an edge-mnv2 CPU artifact through TVM's C++ runtime (no Python).
//
//   classify MODEL.so IMAGE [--mean R,G,B --std R,G,B] [--labels FILE] [--top K]
//
// MODEL.so is the library in the folder `edge-mnv2 compile ... -o DIR` wrote (artifact.json names it).
// IMAGE is a binary PPM (P6, maxval 255) already at the model's input size, normalised here as
// (pixel / 255 - mean) / std with the mean and std from artifact.json's "preprocessing" (defaults:
// ImageNet's), or a .f32 file: the model input, float32 N x C x H x W, already normalised.
// --labels: a text file with one class name per line. Prints the top-K classes (default 5).
//
// In TVM 0.27 a module and its functions are tvm-ffi objects (tvm/ffi/extra/module.h); the artifact
// holds a Relax VM executable, which libtvm_runtime's loader returns as a module with
// "vm_load_executable". Build: see docs/deploy.md (link libtvm_runtime with --no-as-needed: it
// registers the loaders this program only looks up by name).
#include <dlpack/dlpack.h>
#include <tvm/ffi/container/shape.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

namespace ffi = tvm::ffi;

namespace {

// Host memory for tensors, 64-byte aligned as TVM's kernels expect.
struct AlignedCPUAlloc {
  void AllocData(DLTensor* t) {
    size_t bytes = (ffi::GetDataSize(*t) + 63) / 64 * 64;
    t->data = std::aligned_alloc(64, bytes ? bytes : 64);
  }
  void FreeData(DLTensor* t) { std::free(t->data); }
};

[[noreturn]] void die(const std::string& msg) {
  std::cerr << "classify: " << msg << "\n";
  std::exit(1);
}

std::vector<char> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) die("cannot read " + path);
  return std::vector<char>(std::istreambuf_iterator<char>(f), {});
}

std::vector<float> parse_triple(const std::string& s) {
  std::vector<float> v;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) v.push_back(std::stof(item));
  if (v.size() != 3) die("expected three comma-separated numbers, got " + s);
  return v;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A P6 PPM -> float NCHW, normalised; returns {height, width}.
std::vector<float> ppm_input(const std::string& path, const std::vector<float>& mean,
                             const std::vector<float>& std_, int64_t* h, int64_t* w) {
  std::vector<char> data = read_file(path);
  std::string fields[4];
  size_t pos = 0;
  for (int i = 0; i < 4;) {
    while (pos < data.size() && std::isspace(static_cast<unsigned char>(data[pos]))) ++pos;
    if (pos < data.size() && data[pos] == '#') {
      while (pos < data.size() && data[pos] != '\n') ++pos;
      continue;
    }
    while (pos < data.size() && !std::isspace(static_cast<unsigned char>(data[pos]))) fields[i] += data[pos++];
    ++i;
  }
  ++pos;  // the single whitespace byte before the pixels
  if (fields[0] != "P6" || fields[3] != "255") die(path + ": not a binary 8-bit PPM (P6, maxval 255)");
  *w = std::stol(fields[1]);
  *h = std::stol(fields[2]);
  if (data.size() < pos + static_cast<size_t>(*w * *h * 3)) die(path + ": truncated");
  const auto* px = reinterpret_cast<const unsigned char*>(data.data() + pos);
  std::vector<float> x(3 * *h * *w);
  for (int64_t y = 0; y < *h; ++y)
    for (int64_t xx = 0; xx < *w; ++xx)
      for (int c = 0; c < 3; ++c) {
        float v = static_cast<float>(px[(y * *w + xx) * 3 + c]) * (1.0f / 255.0f);
        x[(c * *h + y) * *w + xx] = (v - mean[c]) / std_[c];
      }
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) die("usage: classify MODEL.so IMAGE.ppm|IMAGE.f32 [--mean R,G,B --std R,G,B] [--labels FILE] [--top K]");
  std::string library = argv[1], image = argv[2], labels_path;
  std::vector<float> mean = {0.485f, 0.456f, 0.406f}, std_ = {0.229f, 0.224f, 0.225f};
  int top = 5;
  for (int i = 3; i + 1 < argc; i += 2) {
    std::string opt = argv[i];
    if (opt == "--mean") mean = parse_triple(argv[i + 1]);
    else if (opt == "--std") std_ = parse_triple(argv[i + 1]);
    else if (opt == "--labels") labels_path = argv[i + 1];
    else if (opt == "--top") top = std::atoi(argv[i + 1]);
    else die("unknown option " + opt);
  }

  // The input, as float32 1 x 3 x H x W.
  int64_t h = 0, w = 0;
  std::vector<float> pixels;
  if (ends_with(image, ".f32")) {
    std::vector<char> raw = read_file(image);
    pixels.resize(raw.size() / sizeof(float));
    std::memcpy(pixels.data(), raw.data(), pixels.size() * sizeof(float));
    h = w = static_cast<int64_t>(std::lround(std::sqrt(pixels.size() / 3.0)));
    if (3 * h * w != static_cast<int64_t>(pixels.size())) die(image + ": not a square 3-channel float32 input");
  } else {
    pixels = ppm_input(image, mean, std_, &h, &w);
  }

  try {
    // Load the library and make a Relax VM on the CPU (what tvm.runtime.vm.VirtualMachine does).
    DLDevice cpu{kDLCPU, 0};
    ffi::Module lib = ffi::Module::LoadFromFile(library);
    ffi::Module vm = lib->GetFunction("vm_load_executable").value()().cast<ffi::Module>();
    constexpr int kPooledAllocator = 2;
    vm->GetFunction("vm_initialization").value()(static_cast<int>(cpu.device_type), cpu.device_id,
                                                  kPooledAllocator);
    ffi::Function run = vm->GetFunction("main").value();

    ffi::Tensor input = ffi::Tensor::FromNDAlloc(AlignedCPUAlloc(), ffi::Shape({1, 3, h, w}),
                                                 DLDataType{kDLFloat, 32, 1}, cpu);
    std::memcpy(input.data_ptr(), pixels.data(), pixels.size() * sizeof(float));

    ffi::Any result = run(input);
    ffi::Tensor output = result.cast<ffi::Tensor>();   // one output: a float32 1 x classes tensor
    const float* logits = static_cast<const float*>(output.data_ptr());
    const int64_t n = output.numel();

    std::vector<std::string> labels;
    if (!labels_path.empty()) {
      std::ifstream f(labels_path);
      for (std::string line; std::getline(f, line);) labels.push_back(line);
    }
    float peak = *std::max_element(logits, logits + n);
    double total = 0;
    for (int64_t i = 0; i < n; ++i) total += std::exp(static_cast<double>(logits[i] - peak));
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return logits[a] > logits[b]; });
    for (int rank = 0; rank < std::min<int64_t>(top, n); ++rank) {
      int64_t i = order[rank];
      std::string label = i < static_cast<int64_t>(labels.size()) ? labels[i] : "class " + std::to_string(i);
      std::printf("%d  %4lld  %.4f  %s\n", rank + 1, static_cast<long long>(i),
                  std::exp(static_cast<double>(logits[i] - peak)) / total, label.c_str());
    }
  } catch (const ffi::Error& e) {
    die(std::string("TVM: ") + e.what());
  }
  return 0;
}
