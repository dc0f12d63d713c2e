// Connects the public TF32 switch (anvil/amp/precision.h) to the CUDA backend's
// (backend/cuda/tf32.h, read by the matmul and convolution launches).
#include "anvil/amp/precision.h"
#include "backend/cuda/tf32.h"

namespace anvil::cuda {
namespace {

const bool g_registered = [] {
  ::anvil::detail::set_allow_tf32_hook = &set_allow_tf32;
  ::anvil::detail::allow_tf32_hook = &allow_tf32;
  return true;
}();

}  // namespace
}  // namespace anvil::cuda
