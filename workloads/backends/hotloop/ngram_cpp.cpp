// Hashed n-gram counts (see ngram.py for the definition) in C++, bound with pybind11; the GIL is released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace py = pybind11;

namespace {
constexpr uint64_t kFnvOffset = 14695981039346656037ULL;
constexpr uint64_t kFnvPrime = 1099511628211ULL;

using I64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

py::array_t<float> ngram_features(const I64& ids, const I64& offsets, int n_max, int buckets) {
  if (offsets.ndim() != 1 || offsets.shape(0) < 1 || ids.ndim() != 1 || buckets < 1 || n_max < 1) {
    throw std::invalid_argument("ngram_features: ids and offsets must be 1-D, buckets and n_max >= 1");
  }
  const int64_t* id = ids.data();
  const int64_t* off = offsets.data();
  const py::ssize_t rows = offsets.shape(0) - 1;
  py::array_t<float> out({rows, static_cast<py::ssize_t>(buckets)});
  float* o = out.mutable_data();
  const uint64_t nb = static_cast<uint64_t>(buckets);
  {
    py::gil_scoped_release release;
    std::fill(o, o + rows * buckets, 0.0f);
    for (py::ssize_t r = 0; r < rows; ++r) {
      float* row = o + r * buckets;
      for (int n = 1; n <= n_max; ++n) {
        for (int64_t i = off[r]; i + n <= off[r + 1]; ++i) {
          uint64_t h = (kFnvOffset ^ static_cast<uint64_t>(n)) * kFnvPrime;
          for (int64_t k = i; k < i + n; ++k) h = (h ^ static_cast<uint64_t>(id[k])) * kFnvPrime;
          row[h % nb] += 1.0f;
        }
      }
    }
  }
  return out;
}
}  // namespace

PYBIND11_MODULE(ngram_cpp, m) {
  m.doc() = "Hashed n-gram counts over token ids (C++ via pybind11)";
  m.def("ngram_features", &ngram_features, py::arg("ids"), py::arg("offsets"), py::arg("n_max"), py::arg("buckets"));
}
