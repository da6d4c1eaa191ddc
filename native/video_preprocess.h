// Declarations of the fused CPU video preprocessing exported by videorft._native.
#pragma once

#include <array>
#include <cstdint>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

namespace videorft {

// uint8 [T, H, W, 3] -> uint8 [T, out_h, out_w, 3], antialiased bicubic (PyTorch's filter).
pybind11::array_t<uint8_t> resize_frames(
    const pybind11::array_t<uint8_t, pybind11::array::c_style>& frames, int out_h, int out_w,
    int num_threads);

// uint8 [T, H, W, 3] -> float32 [gt*gh*gw, 3*temporal*patch*patch]: resize to (out_h, out_w),
// normalise with mean/std, cut into Qwen-VL patch rows (merge blocks contiguous). An odd T
// repeats the last frame.
pybind11::array_t<float> preprocess_frames(
    const pybind11::array_t<uint8_t, pybind11::array::c_style>& frames, int out_h, int out_w,
    std::array<float, 3> mean, std::array<float, 3> stdev, int patch, int merge, int temporal,
    int num_threads);

// Threads a call with num_threads=0 uses (1 without OpenMP).
int max_threads();

}  // namespace videorft
