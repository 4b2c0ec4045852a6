// The TileEpilogue (gemm_f32.hpp) on GCC/Clang vector extensions and on single floats, for the AVX2 and
// portable micro-kernels to include (only them: everything here has internal linkage, so each ISA file keeps
// its own copy, compiled with its own flags).
#pragma once

#include "backends/cpu/opt/gemm_f32.hpp"

namespace orchard::cpu::opt {
namespace {

template <class V>
inline V tile_load(const float* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

// Returns ep applied to the lanes of v: tile row i, columns j0 .. j0 + lanes.
template <class V>
inline V tile_finish(const TileEpilogue& ep, int i, int j0, V v) {
  if (ep.alpha != 1) v *= ep.alpha;
  if (ep.row_bias != nullptr) v += ep.row_bias[i];
  if (ep.col_bias != nullptr) v += tile_load<V>(ep.col_bias + j0);
  if (ep.residual != nullptr) v += ep.residual_scale * tile_load<V>(ep.residual + i * ep.ld_residual + j0);
  if (ep.clamp == TileEpilogue::Clamp::relu) {
    v = v > 0.0f ? v : V{};  // NaN gives 0, as the reference Relu
  } else if (ep.clamp == TileEpilogue::Clamp::clip) {
    v = v < ep.lo ? V{} + ep.lo : v;  // NaN compares false and is kept, as the reference Clip
    v = v > ep.hi ? V{} + ep.hi : v;
  }
  return v;
}

// Returns ep applied to one value at tile row i, column j.
inline float tile_finish_one(const TileEpilogue& ep, int i, int j, float v) {
  if (ep.alpha != 1) v *= ep.alpha;
  if (ep.row_bias != nullptr) v += ep.row_bias[i];
  if (ep.col_bias != nullptr) v += ep.col_bias[j];
  if (ep.residual != nullptr) v += ep.residual_scale * ep.residual[i * ep.ld_residual + j];
  if (ep.clamp == TileEpilogue::Clamp::relu) {
    v = v > 0.0f ? v : 0.0f;
  } else if (ep.clamp == TileEpilogue::Clamp::clip) {
    v = v < ep.lo ? ep.lo : v;
    v = v > ep.hi ? ep.hi : v;
  }
  return v;
}

}  // namespace
}  // namespace orchard::cpu::opt
