// Checked cuBLAS calls for the drivers that use cuBLAS (bench_gemm, bench_conv): the status and the call as a JSON
// error line, then exit, like CK in harness.cuh.
#pragma once
#include <cublas_v2.h>

#include <cstdio>
#include <cstdlib>

#define CB(call)                                                                                  \
  do {                                                                                            \
    cublasStatus_t s_ = (call);                                                                   \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                            \
      std::fprintf(stderr, "{\"error\":\"cublas status %d\",\"call\":\"%s\"}\n", (int)s_, #call); \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)
