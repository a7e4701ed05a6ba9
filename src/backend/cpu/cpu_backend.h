// tokamak CPU backend: the op interface implemented by the fp32 reference loops of src/ref.
// It runs the real engine anywhere and is what every GPU result is checked against.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace tk {

// num_threads <= 0: OpenMP's default (or TOKAMAK_NUM_THREADS).
std::unique_ptr<Backend> make_cpu_backend(int num_threads = 0);

// The threads a backend made with num_threads <= 0 on this thread runs its ops on: OpenMP's count
// (OMP_NUM_THREADS's first value when it is set, else one per CPU).
int cpu_default_threads();

}  // namespace tk
