// Fused Qwen-VL video preprocessing on the CPU: antialiased bicubic resize, CLIP
// normalisation and patch layout in one pass over the frames, parallel over output rows.
//
// Each output row is produced by a vertical pass (a weighted sum of whole input rows, which
// vectorises) into a per-thread buffer, then a horizontal pass; the row is rounded to uint8
// exactly like the PyTorch path (round half to even, clamp to [0, 255]) and either stored as
// pixels or normalised through a 256-entry table and scattered to its patch position.
#include "video_preprocess.h"

#include <array>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "resample.h"

namespace py = pybind11;

namespace videorft {
namespace {

using U8Array = py::array_t<uint8_t, py::array::c_style>;

struct Resampler {
  int in_h, in_w, out_h, out_w;
  Taps ty, tx;
  bool resize_y, resize_x;

  Resampler(int ih, int iw, int oh, int ow)
      : in_h(ih), in_w(iw), out_h(oh), out_w(ow), ty(make_taps(ih, oh)), tx(make_taps(iw, ow)),
        resize_y(ih != oh), resize_x(iw != ow) {}

  // One output row `yo` of an HWC uint8 frame -> row[out_w * 3] (float, not yet rounded).
  // col is scratch of in_w * 3 floats.
  void row(const uint8_t* frame, int yo, float* col, float* out) const {
    const int stride = in_w * 3;
    if (resize_y) {
      const int y0 = ty.first[yo], taps = ty.count[yo];
      const float* w = &ty.weight[static_cast<size_t>(yo) * ty.max_taps];
      for (int k = 0; k < stride; ++k) col[k] = 0.0f;
      for (int j = 0; j < taps; ++j) {
        const uint8_t* src = frame + static_cast<size_t>(y0 + j) * stride;
        const float wj = w[j];
#pragma omp simd
        for (int k = 0; k < stride; ++k) col[k] += wj * static_cast<float>(src[k]);
      }
    } else {
      const uint8_t* src = frame + static_cast<size_t>(yo) * stride;
      for (int k = 0; k < stride; ++k) col[k] = static_cast<float>(src[k]);
    }
    if (!resize_x) {
      for (int k = 0; k < stride; ++k) out[k] = col[k];
      return;
    }
    for (int xo = 0; xo < out_w; ++xo) {
      const int taps = tx.count[xo];
      const float* w = &tx.weight[static_cast<size_t>(xo) * tx.max_taps];
      const float* s = col + static_cast<size_t>(tx.first[xo]) * 3;
      float r = 0.0f, g = 0.0f, b = 0.0f;
      for (int j = 0; j < taps; ++j) {
        r += w[j] * s[3 * j];
        g += w[j] * s[3 * j + 1];
        b += w[j] * s[3 * j + 2];
      }
      out[3 * xo] = r;
      out[3 * xo + 1] = g;
      out[3 * xo + 2] = b;
    }
  }
};

// Round half to even (as torch.round) and clamp to [0, 255]. Adding and subtracting 1.5 * 2^23
// rounds in the FPU's default mode without a libm call (valid for |v| < 2^22); without
// -ffast-math the compiler keeps both operations.
inline int to_u8(float v) {
  const float magic = 12582912.0f;
  const float clamped = v > 0.0f ? (v < 255.0f ? v : 255.0f) : 0.0f;  // NaN -> 0
  return static_cast<int>((clamped + magic) - magic);
}

int resolve_threads(int requested) {
#ifdef _OPENMP
  return requested > 0 ? requested : omp_get_max_threads();
#else
  (void)requested;
  return 1;
#endif
}

void check_frames(const U8Array& frames) {
  if (frames.ndim() != 4 || frames.shape(3) != 3)
    throw std::invalid_argument("frames must be uint8 [T, H, W, 3]");
  if (frames.shape(0) < 1 || frames.shape(1) < 1 || frames.shape(2) < 1)
    throw std::invalid_argument("frames must hold at least one non-empty frame");
}

// Runs `emit(slot, frame, yo, row)` for every (time slot, output row), in parallel.
template <typename Emit>
void for_each_row(const U8Array& frames, const Resampler& rs, int slots, int threads, Emit emit) {
  const int t = static_cast<int>(frames.shape(0));
  const size_t frame_size = static_cast<size_t>(rs.in_h) * rs.in_w * 3;
  const uint8_t* base = frames.data();
  const int total = slots * rs.out_h;
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> col(static_cast<size_t>(rs.in_w) * 3), row(static_cast<size_t>(rs.out_w) * 3);
#pragma omp for schedule(static)
    for (int task = 0; task < total; ++task) {
      const int slot = task / rs.out_h, yo = task % rs.out_h;
      const int frame = slot < t ? slot : t - 1;  // an odd count repeats the last frame
      rs.row(base + frame * frame_size, yo, col.data(), row.data());
      emit(slot, yo, row.data());
    }
  }
}

}  // namespace

py::array_t<uint8_t> resize_frames(const U8Array& frames, int out_h, int out_w, int num_threads) {
  check_frames(frames);
  if (out_h < 1 || out_w < 1) throw std::invalid_argument("output size must be positive");
  const int t = static_cast<int>(frames.shape(0));
  const Resampler rs(static_cast<int>(frames.shape(1)), static_cast<int>(frames.shape(2)), out_h, out_w);
  py::array_t<uint8_t> out({t, out_h, out_w, 3});
  uint8_t* dst = out.mutable_data();
  const size_t row_len = static_cast<size_t>(out_w) * 3;
  {
    py::gil_scoped_release release;
    for_each_row(frames, rs, t, resolve_threads(num_threads), [&](int slot, int yo, const float* row) {
      uint8_t* o = dst + (static_cast<size_t>(slot) * out_h + yo) * row_len;
      for (size_t k = 0; k < row_len; ++k) o[k] = static_cast<uint8_t>(to_u8(row[k]));
    });
  }
  return out;
}

py::array_t<float> preprocess_frames(const U8Array& frames, int out_h, int out_w,
                                     std::array<float, 3> mean, std::array<float, 3> stdev,
                                     int patch, int merge, int temporal, int num_threads) {
  check_frames(frames);
  const int unit = patch * merge;
  if (patch < 1 || merge < 1 || temporal < 1) throw std::invalid_argument("patch geometry must be positive");
  if (out_h < unit || out_w < unit || out_h % unit || out_w % unit)
    throw std::invalid_argument("output size " + std::to_string(out_h) + "x" + std::to_string(out_w) +
                                " must be a positive multiple of " + std::to_string(unit));
  const int t = static_cast<int>(frames.shape(0));
  const int groups = (t + temporal - 1) / temporal, gh = out_h / patch, gw = out_w / patch;
  const int cols = 3 * temporal * patch * patch;
  const Resampler rs(static_cast<int>(frames.shape(1)), static_cast<int>(frames.shape(2)), out_h, out_w);
  py::array_t<float> out({static_cast<py::ssize_t>(groups) * gh * gw, static_cast<py::ssize_t>(cols)});
  float* dst = out.mutable_data();

  float lut[3][256];  // normalised value of every uint8 level, per channel (same ops as torch)
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) lut[c][v] = (static_cast<float>(v) / 255.0f - mean[c]) / stdev[c];
  // Column offset of each output x inside its merged block: (bw * m*m + mw) rows + ix.
  std::vector<size_t> x_off(out_w);
  for (int xo = 0; xo < out_w; ++xo) {
    const int px = xo / patch, bw = px / merge, mw = px % merge;
    x_off[xo] = (static_cast<size_t>(bw) * merge * merge + mw) * cols + xo % patch;
  }
  const size_t plane = static_cast<size_t>(temporal) * patch * patch;  // channel stride in a row
  {
    py::gil_scoped_release release;
    for_each_row(frames, rs, groups * temporal, resolve_threads(num_threads),
                 [&](int slot, int yo, const float* row) {
      const int g = slot / temporal, tp = slot % temporal;
      const int py_ = yo / patch, bh = py_ / merge, mh = py_ % merge;
      const size_t block_row = (static_cast<size_t>(g) * (gh / merge) + bh) * (gw / merge);
      const size_t base = (block_row * merge * merge + static_cast<size_t>(mh) * merge) * cols +
                          (static_cast<size_t>(tp) * patch + yo % patch) * patch;
      for (int xo = 0; xo < out_w; ++xo) {
        float* o = dst + base + x_off[xo];
        o[0] = lut[0][to_u8(row[3 * xo])];
        o[plane] = lut[1][to_u8(row[3 * xo + 1])];
        o[2 * plane] = lut[2][to_u8(row[3 * xo + 2])];
      }
    });
  }
  return out;
}

int max_threads() { return resolve_threads(0); }

}  // namespace videorft
