// CUPTI activity tracer loaded into an unmodified CUDA program by the driver (the mechanism Nsight Systems uses):
//   CUDA_INJECTION64_PATH=build/cuda/libailab_trace.so AILAB_TRACE_OUT=trace.jsonl build/cuda/bench_streams ...
// The driver calls InitializeInjection() at CUDA initialisation; it enables activity records for kernels, memory
// copies and sets, and CUDA runtime API calls; at exit every record is flushed and written as one JSON line:
//   {"kind":"kernel","name":"...","stream":7,"start":ns,"end":ns,"graph":0,"corr":12}
//   {"kind":"memcpy","copy":"HtoD","bytes":4096,"stream":7,"start":ns,"end":ns,"corr":13}
//   {"kind":"api","name":"cudaLaunchKernel_v7000","start":ns,"end":ns,"corr":12,"thread":1234}
// GPU timestamps are CUPTI's (ns, one clock for the whole trace). Only the leading fields of each record are read;
// the oldest record versions with those fields are used (Kernel9, Memcpy4, Memset4): their offsets are the same
// in every later version up to CUDA 13.5 (checked with offsetof against the 13.5 headers).
#include <cupti_activity.h>
#include <cupti_activity_deprecated.h>
#include <cupti_callbacks.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace {

constexpr size_t BUF = 8 << 20;
std::mutex mu;
FILE* out = nullptr;
std::atomic<unsigned long long> dropped{0};

void check(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return;
  const char* s = nullptr;
  cuptiGetResultString(r, &s);
  std::fprintf(stderr, "{\"error\":\"ailab_trace: %s: %s\"}\n", what, s ? s : "?");
}

std::string json_str(const char* s) {
  std::string o = "\"";
  for (const char* p = s ? s : ""; *p; ++p) {
    if (*p == '"' || *p == '\\') o += '\\';
    if ((unsigned char)*p < 0x20) continue;
    o += *p;
  }
  return o + "\"";
}

const char* copy_kind(uint8_t k) {
  switch (k) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD: return "HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH: return "DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD: return "DtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP: return "PtoP";
    default: return "other";
  }
}

void write(const CUpti_Activity* rec) {
  char line[1024];
  int n = 0;
  switch (rec->kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
      auto* k = reinterpret_cast<const CUpti_ActivityKernel9*>(rec);
      std::string name = json_str(k->name);
      n = std::snprintf(line, sizeof line,
                        "{\"kind\":\"kernel\",\"name\":%s,\"stream\":%u,\"start\":%llu,\"end\":%llu,\"graph\":%u,"
                        "\"corr\":%u}\n",
                        name.substr(0, 700).c_str(), k->streamId, (unsigned long long)k->start,
                        (unsigned long long)k->end, k->graphId, k->correlationId);
      break;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
      auto* m = reinterpret_cast<const CUpti_ActivityMemcpy4*>(rec);
      n = std::snprintf(line, sizeof line,
                        "{\"kind\":\"memcpy\",\"copy\":\"%s\",\"bytes\":%llu,\"stream\":%u,\"start\":%llu,\"end\":%llu,"
                        "\"corr\":%u}\n",
                        copy_kind(m->copyKind), (unsigned long long)m->bytes, m->streamId,
                        (unsigned long long)m->start, (unsigned long long)m->end, m->correlationId);
      break;
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
      auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(rec);
      n = std::snprintf(line, sizeof line,
                        "{\"kind\":\"memset\",\"bytes\":%llu,\"stream\":%u,\"start\":%llu,\"end\":%llu}\n",
                        (unsigned long long)m->bytes, m->streamId, (unsigned long long)m->start,
                        (unsigned long long)m->end);
      break;
    }
    case CUPTI_ACTIVITY_KIND_RUNTIME: {
      auto* a = reinterpret_cast<const CUpti_ActivityAPI*>(rec);
      const char* name = nullptr;
      cuptiGetCallbackName(CUPTI_CB_DOMAIN_RUNTIME_API, a->cbid, &name);
      n = std::snprintf(line, sizeof line,
                        "{\"kind\":\"api\",\"name\":%s,\"start\":%llu,\"end\":%llu,\"corr\":%u,\"thread\":%u}\n",
                        json_str(name).c_str(), (unsigned long long)a->start, (unsigned long long)a->end,
                        a->correlationId, a->threadId);
      break;
    }
    default:
      return;
  }
  if (n > 0 && out) std::fwrite(line, 1, (size_t)std::min<int>(n, (int)sizeof line - 1), out);
}

void CUPTIAPI requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, BUF));
  *size = BUF;
  *max_records = 0;
}

void CUPTIAPI completed(CUcontext, uint32_t stream, uint8_t* buffer, size_t, size_t valid) {
  (void)stream;
  std::lock_guard<std::mutex> lock(mu);
  CUpti_Activity* rec = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) write(rec);
  size_t d = 0;
  if (cuptiActivityGetNumDroppedRecords(nullptr, 0, &d) == CUPTI_SUCCESS) dropped += d;
  std::free(buffer);
}

void finish() {
  check(cuptiActivityFlushAll(1), "flush");
  std::lock_guard<std::mutex> lock(mu);
  if (out) {
    std::fprintf(out, "{\"kind\":\"end\",\"dropped\":%llu}\n", dropped.load());
    std::fclose(out);
    out = nullptr;
  }
}

}  // namespace

extern "C" int InitializeInjection(void) {
  const char* path = std::getenv("AILAB_TRACE_OUT");
  out = std::fopen(path && *path ? path : "ailab_trace.jsonl", "w");
  if (!out) {
    std::fprintf(stderr, "{\"error\":\"ailab_trace: cannot open %s\"}\n", path ? path : "ailab_trace.jsonl");
    return 0;
  }
  check(cuptiActivityRegisterCallbacks(requested, completed), "register callbacks");
  for (CUpti_ActivityKind k : {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
                               CUPTI_ACTIVITY_KIND_MEMSET, CUPTI_ACTIVITY_KIND_RUNTIME})
    check(cuptiActivityEnable(k), "enable");
  std::atexit(finish);
  return 1;
}
