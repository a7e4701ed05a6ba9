// The switch of programmatic dependent launch (common.cuh): on unless TOKAMAK_DISABLE_PDL=1.
#include "core/core.h"

namespace tk::kernels::detail {

bool programmatic_launch_enabled() {
  static const bool enabled = !env_flags().disable_pdl;
  return enabled;
}

}  // namespace tk::kernels::detail
