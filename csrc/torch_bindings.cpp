// The one registration unit: every op's schema, its documentation, and its
// implementation per dispatch key. Importing augcore._C runs this.
#include <Python.h>
#include <torch/library.h>

#include <sstream>

#include "ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef AUGCORE_CUDA_ARCHS
#define AUGCORE_CUDA_ARCHS ""
#endif

namespace augcore {

// JSON describing what this binary contains (parsed by augcore.build_info()).
std::string build_info() {
  std::ostringstream out;
  out << "{\"cpu\": true";
#ifdef _OPENMP
  out << ", \"openmp\": true, \"openmp_threads\": " << omp_get_max_threads();
#else
  out << ", \"openmp\": false, \"openmp_threads\": 1";
#endif
#ifdef AUGCORE_WITH_CUDA
  out << ", \"cuda\": true, \"cuda_archs\": \"" << AUGCORE_CUDA_ARCHS << "\"";
#else
  out << ", \"cuda\": false, \"cuda_archs\": \"\"";
#endif
  out << ", \"torch_abi\": " << _GLIBCXX_USE_CXX11_ABI << "}";
  return out.str();
}

}  // namespace augcore

TORCH_LIBRARY(augcore, m) {
  m.def("build_info() -> str", &augcore::build_info);
  // (errors e (N,C) f32, loss (N,) f32, |e|^2 (N,) f32, |h|^2 (N,) f32 or empty). loss: 0 = CE, 1 = squared.
  m.def("grad_proxies(Tensor logits, Tensor labels, Tensor? embeddings, int loss) -> (Tensor, Tensor, Tensor, Tensor)");
  // Squared distances inside each CSR group (x sorted by group), blocks of n_g^2 back to back.
  // With embeddings: between exact last-layer gradients [e (x) h, sqrt(bias) e], factored.
  m.def("pairwise_sqdist(Tensor x, Tensor? embeddings, Tensor indptr, float bias) -> Tensor");
  // Segmented facility-location greedy. indptr/budgets are host int64 tensors. similarity (kind 2 only):
  // candidate-major blocks, block[c * n + i] = s_ic. Returns positions in sorted order:
  // (picks (K,) i64 greedy order per group, gains (K,) f64, gamma (K,) i64, assignment (N,) i64 or -1,
  //  objective (G,) f64, seconds (2,) f64 [similarity, greedy] summed over groups).
  m.def(
      "facility_location(Tensor x, Tensor? embeddings, Tensor? similarity, Tensor indptr, Tensor budgets, "
      "int similarity_kind, float scale, float bias, int method, float eps, int seed, int mode, int memory_limit) "
      "-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(augcore, CPU, m) {
  m.impl("grad_proxies", &augcore::grad_proxies_cpu);
  m.impl("pairwise_sqdist", &augcore::pairwise_sqdist_cpu);
  m.impl("facility_location", &augcore::facility_location_cpu);
}

#ifdef AUGCORE_WITH_CUDA
TORCH_LIBRARY_IMPL(augcore, CUDA, m) {
  m.impl("grad_proxies", &augcore::grad_proxies_cuda);
  m.impl("pairwise_sqdist", &augcore::pairwise_sqdist_cuda);
  m.impl("facility_location", &augcore::facility_location_cuda);
}
#endif

// A Python module with no functions: importing it loads the library and runs the
// registrations above, which is all Python needs (ops live in torch.ops.augcore).
static struct PyModuleDef augcore_module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&augcore_module); }
