// Swish and Mish as TensorRT 10 plugins (IPluginV3: IPluginV3OneCore / IPluginV3OneBuild / IPluginV3OneRuntime),
// the TensorRT path of d12 and d66 for hosts that have TensorRT; the H200 runs the same kernels as torch.library
// ops (workloads/engines/custom_ops.py).
//
// One file for both ops: they differ only in the activation the kernel applies (act_kernels.cuh), so one plugin
// class carries an `Act` and two creators (one per plugin name) register it; two files would repeat every
// method. Elementwise, one input, one output of the input's shape and type; FP32 and FP16, linear format only.
//
// Names as the ONNX parser looks them up: a node of op_type "AilabSwish" / "AilabMish" (any domain; the lab
// exports them in domain "ailab.trt") with attributes plugin_version "1" and plugin_namespace "".
// Load: `trtexec --staticPlugins=libailab_trt_plugins.so` (TensorRT 10; `--plugins=` before it), or dlopen the
// library before parsing (Python: ctypes.CDLL(path, RTLD_GLOBAL)); REGISTER_TENSORRT_PLUGIN registers both
// creators with getPluginRegistry() when the library is loaded.
#include "act_launch.h"

#include <NvInferRuntime.h>

#include <cstdint>
#include <new>

namespace ailab {
namespace {

using nvinfer1::DataType;
using nvinfer1::DimsExprs;
using nvinfer1::DynamicPluginTensorDesc;
using nvinfer1::IExprBuilder;
using nvinfer1::IPluginCapability;
using nvinfer1::IPluginResourceContext;
using nvinfer1::IPluginV3;
using nvinfer1::PluginCapabilityType;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginTensorDesc;
using nvinfer1::TensorFormat;
using nvinfer1::TensorRTPhase;

constexpr char const* kPluginVersion = "1";
constexpr char const* kPluginNamespace = "";

constexpr char const* pluginName(Act act) noexcept { return act == Act::kSwish ? "AilabSwish" : "AilabMish"; }

int64_t volume(nvinfer1::Dims const& d) noexcept {
  int64_t n = 1;
  for (int32_t i = 0; i < d.nbDims; ++i) n *= d.d[i];
  return n;
}

bool supportedType(DataType t) noexcept { return t == DataType::kFLOAT || t == DataType::kHALF; }

class ActPlugin final : public IPluginV3,
                        public nvinfer1::IPluginV3OneCore,
                        public nvinfer1::IPluginV3OneBuild,
                        public nvinfer1::IPluginV3OneRuntime {
 public:
  explicit ActPlugin(Act act) noexcept : mAct(act) {}
  ~ActPlugin() noexcept = default;

  // IPluginV3: one object provides all three capabilities (build and runtime phases alike)
  IPluginCapability* getCapabilityInterface(PluginCapabilityType type) noexcept override {
    switch (type) {
      case PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
      case PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
      case PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    }
    return nullptr;
  }

  IPluginV3* clone() noexcept override { return new (std::nothrow) ActPlugin(mAct); }

  // IPluginV3OneCore
  char const* getPluginName() const noexcept override { return pluginName(mAct); }
  char const* getPluginVersion() const noexcept override { return kPluginVersion; }
  char const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

  // IPluginV3OneBuild
  int32_t configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out,
                          int32_t nbOutputs) noexcept override {
    return (nbInputs == 1 && nbOutputs == 1 && in[0].desc.type == out[0].desc.type) ? 0 : 1;
  }

  int32_t getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                             int32_t nbInputs) const noexcept override {
    if (nbInputs != 1 || nbOutputs != 1) return 1;
    outputTypes[0] = inputTypes[0];
    return 0;
  }

  // elementwise: the output has the input's dimensions, whatever is dynamic in them stays dynamic
  int32_t getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
                          int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
                          IExprBuilder& /*exprBuilder*/) noexcept override {
    if (nbInputs != 1 || nbOutputs != 1) return 1;
    outputs[0] = inputs[0];
    return 0;
  }

  // position 0 is the input, 1 the output: FP32 or FP16, linear; the output matches the input's type
  bool supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override {
    if (nbInputs != 1 || nbOutputs != 1 || pos < 0 || pos > 1) return false;
    auto const& d = inOut[pos].desc;
    if (d.format != TensorFormat::kLINEAR || !supportedType(d.type)) return false;
    return pos == 0 || d.type == inOut[0].desc.type;
  }

  int32_t getNbOutputs() const noexcept override { return 1; }

  // IPluginV3OneRuntime
  int32_t onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/,
                        int32_t nbOutputs) noexcept override {
    return (nbInputs == 1 && nbOutputs == 1 && supportedType(in[0].type)) ? 0 : 1;
  }

  int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
                  void const* const* inputs, void* const* outputs, void* /*workspace*/,
                  cudaStream_t stream) noexcept override {
    DataType const t = inputDesc[0].type;
    if (!supportedType(t)) return 1;
    ActType const type = t == DataType::kHALF ? ActType::kFloat16 : ActType::kFloat32;
    return launchAct(mAct, type, inputs[0], outputs[0], volume(inputDesc[0].dims), stream) == cudaSuccess ? 0 : 1;
  }

  IPluginV3* attachToContext(IPluginResourceContext* /*context*/) noexcept override { return clone(); }

  // nothing to serialise: the plugin name says which activation it is
  PluginFieldCollection const* getFieldsToSerialize() noexcept override { return &mNoFields; }

 private:
  Act mAct;
  PluginFieldCollection mNoFields{0, nullptr};
};

template <Act A>
class ActPluginCreator final : public nvinfer1::IPluginCreatorV3One {
 public:
  ActPluginCreator() noexcept = default;
  ~ActPluginCreator() noexcept = default;

  char const* getPluginName() const noexcept override { return pluginName(A); }
  char const* getPluginVersion() const noexcept override { return kPluginVersion; }
  char const* getPluginNamespace() const noexcept override { return kPluginNamespace; }
  PluginFieldCollection const* getFieldNames() noexcept override { return &mNoFields; }

  // fields (ONNX node attributes other than plugin_version / plugin_namespace) are not used: there are none
  IPluginV3* createPlugin(char const* /*name*/, PluginFieldCollection const* /*fc*/,
                          TensorRTPhase /*phase*/) noexcept override {
    return new (std::nothrow) ActPlugin(A);
  }

 private:
  PluginFieldCollection mNoFields{0, nullptr};
};

using SwishPluginCreator = ActPluginCreator<Act::kSwish>;
using MishPluginCreator = ActPluginCreator<Act::kMish>;

// the macro pastes the name into a variable name: unqualified, so it is used inside the namespace
REGISTER_TENSORRT_PLUGIN(SwishPluginCreator);
REGISTER_TENSORRT_PLUGIN(MishPluginCreator);

}  // namespace
}  // namespace ailab
