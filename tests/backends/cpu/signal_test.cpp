#include <cmath>
#include <complex>
#include <numbers>

#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Tensor run_one(const OpCase& c) {
  auto y = run_op(c);
  EXPECT_TRUE(y.ok()) << y.status().to_string();
  if (!y.ok()) return Tensor();
  return (*y)[0].tensor();
}

// The O(n^2) definition, for checking the fast paths: returns interleaved (re, im).
std::vector<double> naive_dft(const std::vector<std::complex<double>>& x, bool inverse) {
  const size_t n = x.size();
  std::vector<double> out;
  for (size_t k = 0; k < n; ++k) {
    std::complex<double> acc = 0;
    for (size_t j = 0; j < n; ++j) {
      const double a = (inverse ? 2 : -2) * std::numbers::pi * static_cast<double>((j * k) % n) / static_cast<double>(n);
      acc += x[j] * std::complex<double>(std::cos(a), std::sin(a));
    }
    if (inverse) acc /= static_cast<double>(n);
    out.push_back(acc.real());
    out.push_back(acc.imag());
  }
  return out;
}

// Checks DFT of a complex signal of length n (Bluestein for n > 64 and not a power of two) against the definition.
void check_complex_dft(int64_t n, bool inverse) {
  std::vector<std::complex<double>> sig;
  std::vector<double> interleaved;
  for (int64_t j = 0; j < n; ++j) {
    sig.emplace_back(std::sin(0.3 * static_cast<double>(j)) + 0.1 * static_cast<double>(j % 7), std::cos(static_cast<double>(j * j) * 0.01));
    interleaved.push_back(sig.back().real());
    interleaved.push_back(sig.back().imag());
  }
  Tensor x = Tensor::from_vector<double>({1, n, 2}, interleaved);
  Tensor y = run_one(OpCase("DFT", 17).input("x", x).attr("inverse", int64_t{inverse ? 1 : 0}));
  expect_tensor_near(y, Tensor::from_vector<double>({1, n, 2}, naive_dft(sig, inverse)), 1e-9, 1e-9);
}

TEST(DFT, MatchesDefinitionForPowerOfTwoShortAndBluesteinLengths) {
  check_complex_dft(64, false);
  check_complex_dft(12, true);
  check_complex_dft(100, false);
  check_complex_dft(97, true);
}

TEST(DFT, OnesidedWithZeroPaddingToDftLength) {
  Tensor x = Tensor::from_vector<float>({1, 3, 1}, {1, 2, 3});
  Tensor len = Tensor::scalar<int64_t>(4);
  Tensor y = run_one(OpCase("DFT", 17).input("x", x).input("dft_length", len).attr("onesided", int64_t{1}));
  expect_tensor_near(y, Tensor::from_vector<float>({1, 3, 2}, {6, 0, -2, -2, 2, 0}));
}

TEST(DFT, TransformsAlongTheChosenAxis) {
  // Two signals along axis 2: [1, 1] -> [2, 0] and [1, -1] -> [0, 2].
  Tensor x = Tensor::from_vector<float>({1, 2, 2, 1}, {1, 1, 1, -1});
  Tensor y = run_one(OpCase("DFT", 17).input("x", x).attr("axis", int64_t{2}));
  expect_tensor_near(y, Tensor::from_vector<float>({1, 2, 2, 2}, {2, 0, 0, 0, 0, 0, 2, 0}));
}

TEST(DFT, RejectsAxisOnTheComplexDimension) {
  Tensor x = Tensor::from_vector<float>({1, 4, 1}, {1, 2, 3, 4});
  auto y = run_op(OpCase("DFT", 17).input("x", x).attr("axis", int64_t{2}));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("axis 2"), std::string::npos) << y.status().message();
}

TEST(STFT, WindowedFramesOnesided) {
  Tensor signal = Tensor::from_vector<float>({1, 6, 1}, {1, 2, 3, 4, 5, 6});
  Tensor step = Tensor::scalar<int64_t>(2);
  Tensor window = Tensor::from_vector<float>({4}, {1, 0, 1, 0});
  Tensor y = run_one(OpCase("STFT", 17).input("signal", signal).input("step", step).input("window", window));
  // Frames [1,2,3,4] and [3,4,5,6] windowed to [1,0,3,0] and [3,0,5,0]: bins k=0..2 are a+c, a-c, a+c.
  expect_tensor_near(y, Tensor::from_vector<float>({1, 2, 3, 2}, {4, 0, -2, 0, 4, 0, 8, 0, -2, 0, 8, 0}));
}

TEST(STFT, RejectsFrameLongerThanSignal) {
  Tensor signal = Tensor::from_vector<float>({1, 4, 1}, {1, 2, 3, 4});
  auto y = run_op(OpCase("STFT", 17)
                      .input("signal", signal)
                      .input("step", Tensor::scalar<int64_t>(1))
                      .omitted_input()
                      .input("frame_length", Tensor::scalar<int64_t>(8)));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("frame length 8"), std::string::npos) << y.status().message();
}

TEST(Windows, PeriodicAndSymmetricWithOutputType) {
  Tensor hann = run_one(OpCase("HannWindow", 17).input("size", Tensor::scalar<int64_t>(4)).attr("output_datatype", int64_t{11}));
  expect_tensor_near(hann, Tensor::from_vector<double>({4}, {0, 0.5, 1, 0.5}), 1e-12, 1e-12);
  Tensor sym = run_one(OpCase("HannWindow", 17).input("size", Tensor::scalar<int32_t>(3)).attr("periodic", int64_t{0}));
  expect_tensor_near(sym, Tensor::from_vector<float>({3}, {0, 1, 0}));
  Tensor hamming = run_one(OpCase("HammingWindow", 17).input("size", Tensor::scalar<int64_t>(2)));
  expect_tensor_near(hamming, Tensor::from_vector<float>({2}, {4.0f / 46.0f, 1.0f}));
  Tensor blackman = run_one(OpCase("BlackmanWindow", 17).input("size", Tensor::scalar<int64_t>(1)).attr("periodic", int64_t{0}));
  expect_tensor_near(blackman, Tensor::from_vector<float>({1}, {1}));
}

TEST(Windows, RejectsNegativeSizeAndBadOutputType) {
  ASSERT_FALSE(run_op(OpCase("HannWindow", 17).input("size", Tensor::scalar<int64_t>(-1))).ok());
  ASSERT_FALSE(run_op(OpCase("HannWindow", 17).input("size", Tensor::scalar<int64_t>(4)).attr("output_datatype", int64_t{8})).ok());
}

TEST(MelWeightMatrix, TrianglesPeakAtOne) {
  Tensor y = run_one(OpCase("MelWeightMatrix", 17)
                         .input("bins", Tensor::scalar<int32_t>(8))
                         .input("dft", Tensor::scalar<int32_t>(16))
                         .input("rate", Tensor::scalar<int32_t>(8192))
                         .input("lo", Tensor::scalar<float>(0))
                         .input("hi", Tensor::scalar<float>(4096)));
  // Filter edges fall on bins 0 0 0 1 1 2 3 4 5 6: narrow triangles whose peaks are exactly 1.
  std::vector<float> want(9 * 8, 0.0f);
  for (auto [bin, mel] : std::vector<std::pair<int, int>>{{0, 0}, {0, 1}, {1, 2}, {1, 3}, {2, 4}, {3, 5}, {4, 6}, {5, 7}}) {
    want[static_cast<size_t>(bin * 8 + mel)] = 1.0f;
  }
  expect_tensor_near(y, Tensor::from_vector<float>({9, 8}, want), 0, 0);
}

TEST(MelWeightMatrix, RejectsZeroMelBins) {
  auto y = run_op(OpCase("MelWeightMatrix", 17)
                      .input("bins", Tensor::scalar<int32_t>(0))
                      .input("dft", Tensor::scalar<int32_t>(16))
                      .input("rate", Tensor::scalar<int32_t>(8192))
                      .input("lo", Tensor::scalar<float>(0))
                      .input("hi", Tensor::scalar<float>(4096)));
  ASSERT_FALSE(y.ok());
}

}  // namespace
}  // namespace orchard::testing
