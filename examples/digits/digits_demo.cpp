// digits_demo: classifies 360 held-out 8x8 handwritten digits with the bundled CNN (see README.md here).
// Usage: digits_demo [DIR]   (DIR holds digits_cnn.onnx and heldout_{images,labels}.npy; default examples/digits)
// Prints the held-out accuracy, a few digits as ASCII art, batch throughput and single-image latency.
// Exits 0 when accuracy >= 95%, 1 when it is lower or anything fails, 2 on a usage error.
// Uses only the public API in include/orchard/.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "orchard/io.hpp"
#include "orchard/session.hpp"
#include "orchard/tensor.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int64_t kSide = 8;           // images are 8x8
constexpr int64_t kPixels = kSide * kSide;
constexpr int64_t kClasses = 10;
constexpr float kPixelMax = 16.0f;     // pixel values run 0..16
constexpr double kMinAccuracy = 95.0;  // percent; below this the demo fails
constexpr int kShown = 8;              // digits drawn as ASCII art
constexpr size_t kPerRow = 4;          // digits side by side (fits 80 columns)
constexpr int kBatchRuns = 20;         // timed whole-batch runs (after one warm-up)
constexpr float kBatchTolerance = 1e-4f;

struct Prediction {
  int label = 0;
  int predicted = 0;
  float confidence = 0;
};

int fail(const std::string& what) {
  std::fflush(stdout);  // keep the error after what was printed before it, also when both go to one pipe
  std::fprintf(stderr, "digits_demo: error: %s\n", what.c_str());
  return 1;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Runs the model on `images` [n,1,8,8] and returns its probabilities, checked to be float32 [n,10].
orchard::Result<orchard::Tensor> classify(const orchard::Session& session, const std::string& input_name,
                                          const orchard::Tensor& images) {
  ORCHARD_ASSIGN_OR_RETURN(orchard::NamedValues outputs, session.run({{input_name, images}}));
  if (outputs.size() != 1 || !outputs[0].second.is_tensor())
    return orchard::internal_error("expected one tensor output, got ", outputs.size(), " output(s)");
  const orchard::Tensor& probs = outputs[0].second.tensor();
  const int64_t n = images.dim(0);
  if (probs.dtype() != orchard::DType::float32 || probs.shape() != orchard::Shape{n, kClasses})
    return orchard::internal_error("expected output float32[", n, ",", kClasses, "], got ", probs.description());
  return probs;
}

int argmax(const float* p) { return static_cast<int>(std::max_element(p, p + kClasses) - p); }

// Checks the held-out files: images float32 [n,1,8,8] with values 0..16, labels int64 [n] with values 0..9.
orchard::Status check_heldout(const orchard::Tensor& images, const orchard::Tensor& labels) {
  if (images.dtype() != orchard::DType::float32 || images.rank() != 4 || images.dim(1) != 1 ||
      images.dim(2) != kSide || images.dim(3) != kSide || images.dim(0) < 1)
    return orchard::invalid_argument("heldout_images.npy is ", images.description(), ", expected float32[n,1,8,8]");
  if (labels.dtype() != orchard::DType::int64 || labels.rank() != 1 || labels.dim(0) != images.dim(0))
    return orchard::invalid_argument("heldout_labels.npy is ", labels.description(), ", expected int64[",
                                     images.dim(0), "] to match the images");
  const float* px = images.data<float>();
  for (int64_t i = 0; i < images.numel(); ++i)
    if (!(px[i] >= 0 && px[i] <= kPixelMax))
      return orchard::invalid_argument("heldout_images.npy element ", i, " is ", px[i], ", outside 0..16");
  const int64_t* lb = labels.data<int64_t>();
  for (int64_t i = 0; i < labels.numel(); ++i)
    if (lb[i] < 0 || lb[i] >= kClasses)
      return orchard::invalid_argument("heldout_labels.npy element ", i, " is ", lb[i], ", outside 0..9");
  return orchard::Status::OK();
}

// Picks up to kShown images to draw: the misclassified ones first (at most half), then the first correct ones.
std::vector<int64_t> pick_shown(const std::vector<Prediction>& preds) {
  std::vector<int64_t> shown;
  for (size_t i = 0; i < preds.size() && shown.size() < kShown / 2; ++i)
    if (preds[i].predicted != preds[i].label) shown.push_back(static_cast<int64_t>(i));
  for (size_t i = 0; i < preds.size() && shown.size() < kShown; ++i)
    if (preds[i].predicted == preds[i].label) shown.push_back(static_cast<int64_t>(i));
  std::sort(shown.begin(), shown.end());
  return shown;
}

// Draws `shown` images side by side, two characters per pixel, with prediction, confidence and label.
void draw_row(const orchard::Tensor& images, const std::vector<Prediction>& preds, std::span<const int64_t> shown) {
  static constexpr std::string_view kRamp = " .:-=+*#%@";  // darkest last
  constexpr int kWidth = 2 * kSide;
  constexpr std::string_view kGap = "   ";
  const float* px = images.data<float>();
  std::string line;
  auto emit = [&line] {
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("  %s\n", line.c_str());
    line.clear();
  };
  auto cell = [&line, kGap](const std::string& text) {
    line += text;
    line.append(static_cast<size_t>(std::max(0, kWidth - static_cast<int>(text.size()))), ' ');
    line += kGap;
  };
  char text[32];
  for (int64_t i : shown) {
    std::snprintf(text, sizeof text, "#%lld", static_cast<long long>(i));
    cell(text);
  }
  emit();
  for (int64_t y = 0; y < kSide; ++y) {
    for (int64_t i : shown) {
      std::string row;
      for (int64_t x = 0; x < kSide; ++x) {
        const float v = px[i * kPixels + y * kSide + x];
        const auto level = static_cast<size_t>(std::lround(v / kPixelMax * static_cast<float>(kRamp.size() - 1)));
        row.append(2, kRamp[std::min(level, kRamp.size() - 1)]);
      }
      cell(row);
    }
    emit();
  }
  for (int64_t i : shown) {
    const Prediction& p = preds[static_cast<size_t>(i)];
    std::snprintf(text, sizeof text, "pred %d %5.1f%%", p.predicted, 100.0 * p.confidence);
    cell(text);
  }
  emit();
  for (int64_t i : shown) {
    const Prediction& p = preds[static_cast<size_t>(i)];
    std::snprintf(text, sizeof text, "label %d %s", p.label, p.predicted == p.label ? "ok" : "WRONG");
    cell(text);
  }
  emit();
}

void draw(const orchard::Tensor& images, const std::vector<Prediction>& preds, const std::vector<int64_t>& shown) {
  for (size_t first = 0; first < shown.size(); first += kPerRow) {
    if (first > 0) std::printf("\n");
    draw_row(images, preds, std::span(shown).subspan(first, std::min(kPerRow, shown.size() - first)));
  }
}

int run_demo(const fs::path& dir) {
  const fs::path model_path = dir / "digits_cnn.onnx";
  const fs::path images_path = dir / "heldout_images.npy";
  const fs::path labels_path = dir / "heldout_labels.npy";
  for (const fs::path& p : {model_path, images_path, labels_path})
    if (!fs::is_regular_file(p))
      return fail("missing " + p.string() + " (run from the repository root, or pass the folder holding it; "
                  "examples/digits/train.py regenerates it)");

  auto session = orchard::Session::load(model_path);
  if (!session.ok()) return fail("cannot load " + model_path.string() + ": " + session.status().to_string());
  const orchard::Session& model = **session;
  if (model.inputs().size() != 1 || model.outputs().size() != 1)
    return fail("expected a model with one input and one output, got " + std::to_string(model.inputs().size()) +
                " and " + std::to_string(model.outputs().size()));
  const std::string input_name = model.inputs()[0].name;

  auto images = orchard::load_npy(images_path);
  if (!images.ok()) return fail("cannot read " + images_path.string() + ": " + images.status().to_string());
  auto labels = orchard::load_npy(labels_path);
  if (!labels.ok()) return fail("cannot read " + labels_path.string() + ": " + labels.status().to_string());
  if (orchard::Status st = check_heldout(*images, *labels); !st.ok()) return fail(st.to_string());
  const int64_t n = images->dim(0);

  std::string backends;
  for (const std::string& b : model.backends()) backends += (backends.empty() ? "" : ", ") + b;
  std::printf("Orchard digits demo\n");
  std::printf("  model    %s: %s -> %s, %lld parameters, backends: %s\n", model_path.string().c_str(),
              model.inputs()[0].description().c_str(), model.outputs()[0].description().c_str(),
              static_cast<long long>(model.model_info().parameter_count), backends.c_str());
  std::printf("  held-out %lld images of 8x8 pixels (values 0..16) with labels\n\n", static_cast<long long>(n));

  // The whole batch: one warm-up run gives the predictions, then timed runs.
  auto batch = classify(model, input_name, *images);
  if (!batch.ok()) return fail("running the batch of " + std::to_string(n) + " images: " + batch.status().to_string());
  std::vector<double> batch_s;
  for (int r = 0; r < kBatchRuns; ++r) {
    const auto start = Clock::now();
    auto again = classify(model, input_name, *images);
    batch_s.push_back(seconds_since(start));
    if (!again.ok()) return fail("running the batch again: " + again.status().to_string());
  }

  const float* probs = batch->data<float>();
  const int64_t* lb = labels->data<int64_t>();
  std::vector<Prediction> preds(static_cast<size_t>(n));
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* p = probs + i * kClasses;
    for (int64_t c = 0; c < kClasses; ++c)
      if (!std::isfinite(p[c])) return fail("probability " + std::to_string(c) + " of image " + std::to_string(i) +
                                            " is not finite");
    Prediction& pr = preds[static_cast<size_t>(i)];
    pr.label = static_cast<int>(lb[i]);
    pr.predicted = argmax(p);
    pr.confidence = p[pr.predicted];
    correct += pr.predicted == pr.label;
  }

  // One image at a time: latency, and a check that batching does not change the answers.
  std::vector<double> single_s;
  float worst_diff = 0;
  for (int64_t i = 0; i < n; ++i) {
    orchard::Tensor one = orchard::Tensor::view(orchard::DType::float32, orchard::Shape{1, 1, kSide, kSide},
                                                images->data<float>() + i * kPixels);
    const auto start = Clock::now();
    auto out = classify(model, input_name, one);
    single_s.push_back(seconds_since(start));
    if (!out.ok()) return fail("running image " + std::to_string(i) + " alone: " + out.status().to_string());
    for (int64_t c = 0; c < kClasses; ++c)
      worst_diff = std::max(worst_diff, std::fabs(out->data<float>()[c] - probs[i * kClasses + c]));
  }
  if (!(worst_diff <= kBatchTolerance))
    return fail("single-image and batch probabilities differ by up to " + std::to_string(worst_diff));

  draw(*images, preds, pick_shown(preds));

  const double accuracy = 100.0 * static_cast<double>(correct) / static_cast<double>(n);
  const double batch_med = median(batch_s), single_med = median(single_s);
  std::printf("\nheld-out accuracy: %.1f%% (%lld/%lld)\n", accuracy, static_cast<long long>(correct),
              static_cast<long long>(n));
  std::printf("batch of %lld:  %.3f ms median over %d runs, %.0f images/s\n", static_cast<long long>(n),
              1e3 * batch_med, kBatchRuns, static_cast<double>(n) / batch_med);
  std::printf("single image:  %.1f us median latency over %lld runs (same results as the batch)\n",
              1e6 * single_med, static_cast<long long>(n));
  if (accuracy < kMinAccuracy) {
    char what[96];
    std::snprintf(what, sizeof what, "accuracy %.1f%% is below the %.0f%% threshold", accuracy, kMinAccuracy);
    return fail(what);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 || (argc == 2 && (std::string_view(argv[1]) == "-h" || std::string_view(argv[1]) == "--help"))) {
    std::fprintf(argc > 2 ? stderr : stdout,
                 "usage: %s [DIR]\n"
                 "Classifies the held-out 8x8 digits in DIR (default examples/digits) with DIR/digits_cnn.onnx.\n",
                 argv[0]);
    return argc > 2 ? 2 : 0;
  }
  return run_demo(argc == 2 ? fs::path(argv[1]) : fs::path("examples/digits"));
}
