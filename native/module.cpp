// The videorft._native extension module: one PYBIND11_MODULE for every native/*.cpp source.
// Each feature declares its functions in its own header and is bound here.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "video_preprocess.h"

namespace py = pybind11;

PYBIND11_MODULE(_native, m) {
  m.doc() = "Optional native kernels of the VideoRFT engine (PyTorch fallbacks exist for all).";
  m.def("resize_frames", &videorft::resize_frames, py::arg("frames"), py::arg("out_h"), py::arg("out_w"),
        py::arg("num_threads") = 0,
        "uint8 [T, H, W, 3] -> uint8 [T, out_h, out_w, 3], bicubic with antialias (PyTorch's filter).");
  m.def("preprocess_frames", &videorft::preprocess_frames, py::arg("frames"), py::arg("out_h"),
        py::arg("out_w"), py::arg("mean"), py::arg("std"), py::arg("patch_size") = 14,
        py::arg("merge_size") = 2, py::arg("temporal_patch_size") = 2, py::arg("num_threads") = 0,
        "uint8 [T, H, W, 3] -> float32 patch rows [gt*gh*gw, 3*tps*p*p]: resize, normalise, patchify.");
  m.def("max_threads", &videorft::max_threads, "Threads used when num_threads is 0.");
}
