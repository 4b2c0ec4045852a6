// Blocked float32 Transpose. Dims are coalesced first (unit dims dropped, input neighbours that stay
// neighbours merged), so transformers' (0, 2, 1, 3) becomes a copy of contiguous rows and (0, 2, 3, 1) or
// (0, 1, 3, 2) a batch of 2-D transposes done in cache-sized tiles. Permutations that keep the data in
// order (the reference aliases them) and invalid ones go to the reference kernel.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backends/cpu/opt/vec_math_kernels.hpp"

namespace orchard::cpu::opt {

namespace {

constexpr int64_t kTile = 16;  // tile edge of the 2-D transposes, in elements

struct Dim {
  int64_t size, in_stride, out_stride;
};

// Copies a [ny, nx] block: out[x * ox + y] = in[y * iy + x], in kTile x kTile tiles.
void transpose_block(const float* in, float* out, int64_t ny, int64_t nx, int64_t iy, int64_t ox) {
  for (int64_t y0 = 0; y0 < ny; y0 += kTile) {
    const int64_t y1 = std::min(ny, y0 + kTile);
    for (int64_t x0 = 0; x0 < nx; x0 += kTile) {
      const int64_t x1 = std::min(nx, x0 + kTile);
      for (int64_t x = x0; x < x1; ++x) {
        float* dst = out + x * ox;
        for (int64_t y = y0; y < y1; ++y) dst[y] = in[y * iy + x];
      }
    }
  }
}

class TransposeKernel final : public VecKernel {
 public:
  TransposeKernel(const KernelCreateContext& c, std::unique_ptr<OpKernel> reference)
      : VecKernel(std::move(reference)), has_perm_(c.node.attr("perm") != nullptr), perm_(c.node.attr_ints("perm")) {}
  static bool accepts(const KernelCreateContext& c) { return maybe_f32(c, 0); }

  Status run(OpContext& ctx) const override {
    if (!ctx.has_input(0) || !ctx.value(0).is_tensor() || ctx.input(0).dtype() != DType::float32) {
      return run_reference(ctx);
    }
    const Tensor& x = ctx.input(0);
    const size_t r = x.rank();
    std::vector<int64_t> perm = perm_;
    if (!has_perm_) {
      perm.resize(r);
      for (size_t i = 0; i < r; ++i) perm[i] = static_cast<int64_t>(r - 1 - i);
    }
    if (perm.size() != r) return run_reference(ctx);
    std::vector<bool> seen(r, false);
    for (int64_t& p : perm) {
      if (p < 0) p += static_cast<int64_t>(r);
      if (p < 0 || p >= static_cast<int64_t>(r) || seen[static_cast<size_t>(p)]) return run_reference(ctx);
      seen[static_cast<size_t>(p)] = true;
    }
    // Coalesce: output dims in order, unit dims dropped, merged while they are input neighbours in order.
    std::vector<int64_t> in_strides = strides_of(x.shape());
    if (x.numel() == 0) return run_reference(ctx);  // nothing to move (and strides may be 0)
    std::vector<Dim> dims;  // output order; out_stride filled below
    for (int64_t p : perm) {
      const int64_t size = x.dim(static_cast<size_t>(p));
      if (size == 1) continue;
      // Merged when the previous output dim is the next outer input dim (unit dims aside).
      if (!dims.empty() && dims.back().in_stride == in_strides[static_cast<size_t>(p)] * size) {
        dims.back().size *= size;
        dims.back().in_stride = in_strides[static_cast<size_t>(p)];
      } else {
        dims.push_back({size, in_strides[static_cast<size_t>(p)], 0});
      }
    }
    Shape out_shape;
    for (int64_t p : perm) out_shape.push_back(x.dim(static_cast<size_t>(p)));
    bool in_order = true;
    for (size_t i = 1; i < dims.size(); ++i) in_order = in_order && dims[i - 1].in_stride > dims[i].in_stride;
    if (in_order) return run_reference(ctx);  // the reference aliases the input
    int64_t acc = 1;
    for (size_t i = dims.size(); i-- > 0;) {
      dims[i].out_stride = acc;
      acc *= dims[i].size;
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, out_shape));
    const float* px = x.data<float>();
    float* py = y.data<float>();
    // Y: the output's innermost dim; X: the input's innermost (in_stride 1). The others are walked outside.
    const size_t yi = dims.size() - 1;
    size_t xi = 0;
    while (dims[xi].in_stride != 1) ++xi;
    std::vector<Dim> outer;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (i != xi && i != yi) outer.push_back(dims[i]);
    }
    int64_t count = 1;
    for (const Dim& d : outer) count *= d.size;
    const Dim dx = dims[xi], dy = dims[yi];
    const int64_t block = xi == yi ? dy.size : dx.size * dy.size;
    parallel_items(ctx.pool(), count, block, [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) {
        int64_t in_off = 0, out_off = 0, rem = o;
        for (size_t i = outer.size(); i-- > 0;) {
          const int64_t k = rem % outer[i].size;
          rem /= outer[i].size;
          in_off += k * outer[i].in_stride;
          out_off += k * outer[i].out_stride;
        }
        if (xi == yi) {
          std::memcpy(py + out_off, px + in_off, static_cast<size_t>(dy.size) * sizeof(float));
        } else {
          transpose_block(px + in_off, py + out_off, dy.size, dx.size, dy.in_stride, dx.out_stride);
        }
      }
    });
    return Status::OK();
  }

 private:
  bool has_perm_;
  std::vector<int64_t> perm_;
};

constexpr KernelDef kKernels[] = {
    vec_def("", "Transpose", 1, kVerifiedOpset, make_vec<TransposeKernel>),
};

}  // namespace

std::span<const KernelDef> transpose_vec_kernels() { return kKernels; }

}  // namespace orchard::cpu::opt
