// Separable antialiased bicubic resampling weights, the same filter and support rule as
// PyTorch's F.interpolate(mode="bicubic", antialias=True, align_corners=False) (Keys cubic
// with a = -0.5, as in PIL; the support widens with the downscale factor).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace videorft {

// For every output position: the first input index, the tap count, and `max_taps` weights
// (zero-padded) that sum to one.
struct Taps {
  int max_taps = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<float> weight;  // [out_size, max_taps]
};

inline double keys_cubic(double x) {
  const double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
  return 0.0;
}

inline Taps make_taps(int in_size, int out_size) {
  Taps taps;
  const double scale = static_cast<double>(in_size) / out_size;
  const double support = scale >= 1.0 ? 2.0 * scale : 2.0;   // bicubic: 4 taps * 0.5 * scale
  const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  taps.max_taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  taps.first.resize(out_size);
  taps.count.resize(out_size);
  taps.weight.assign(static_cast<size_t>(out_size) * taps.max_taps, 0.0f);
  std::vector<double> w(taps.max_taps);
  for (int i = 0; i < out_size; ++i) {
    const double center = scale * (i + 0.5);
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
    const int hi = std::min(static_cast<int>(center + support + 0.5), in_size);
    const int n = std::clamp(hi - lo, 0, taps.max_taps);
    double total = 0.0;
    for (int j = 0; j < n; ++j) {
      w[j] = keys_cubic((j + lo - center + 0.5) * invscale);
      total += w[j];
    }
    float* dst = &taps.weight[static_cast<size_t>(i) * taps.max_taps];
    for (int j = 0; j < n; ++j) dst[j] = static_cast<float>(total != 0.0 ? w[j] / total : w[j]);
    taps.first[i] = lo;
    taps.count[i] = n;
  }
  return taps;
}

}  // namespace videorft
