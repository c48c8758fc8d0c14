// How the XSched-like HALs find the real runtime and forward its entry point to it, as XSched's
// HAL does: the override variable (XSCHED_HIP_LIB, XSCHED_CUDA_LIB) when set, else a fixed list
// of full paths (the vendor folder, then the system library folders; a bare dlopen of the
// runtime's name would find the install's own softlink first under route libpath).
//
// If the file found is the shim itself (the variable points at the shim or its softlink), XSched
// would forward the entry point to itself until the stack overflows; the stand-in says why on
// stderr and aborts at once instead.
#pragma once

#include <dlfcn.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>

namespace xsched_like {

struct RuntimeLookup {
    const char *platform;           // "HIP", "CUDA": for messages
    const char *override_variable;  // XSCHED_HIP_LIB, XSCHED_CUDA_LIB
    const char *const *candidates;  // full paths tried in order when the variable is unset
    std::size_t candidate_count;
    const char *shim_marker;        // a function only the shim exports
    const char *init_symbol;        // hipInit, cuInit
    int no_runtime;                 // what the entry point returns when no runtime is found
};

[[noreturn]] inline void RecursionAbort(const RuntimeLookup &lookup, const char *path) {
    std::fprintf(stderr,
                 "xsched-like HAL: the real %s runtime %s is the XSched shim itself (%s points at the "
                 "shim or its softlink); forwarding %s to it would recurse\n",
                 lookup.platform, path, lookup.override_variable, lookup.init_symbol);
    std::fflush(stderr);
    std::abort();
}

inline int ForwardInit(const RuntimeLookup &lookup, unsigned int flags) {
    const char *override_path = std::getenv(lookup.override_variable);
    void *runtime = nullptr;
    const char *runtime_path = nullptr;
    if (override_path != nullptr && *override_path != '\0') {
        runtime = dlopen(override_path, RTLD_NOW | RTLD_LOCAL);
        runtime_path = override_path;
        if (runtime == nullptr) {
            std::fprintf(stderr, "xsched-like HAL: cannot load %s=%s: %s\n", lookup.override_variable,
                         override_path, dlerror());
            return lookup.no_runtime;
        }
    } else {
        for (std::size_t index = 0; index < lookup.candidate_count && runtime == nullptr; ++index) {
            runtime = dlopen(lookup.candidates[index], RTLD_NOW | RTLD_LOCAL);
            runtime_path = lookup.candidates[index];
        }
        if (runtime == nullptr) return lookup.no_runtime;
    }
    if (dlsym(runtime, lookup.shim_marker) != nullptr) RecursionAbort(lookup, runtime_path);
    using InitFunction = int (*)(unsigned int);
    auto real_init = reinterpret_cast<InitFunction>(dlsym(runtime, lookup.init_symbol));
    if (real_init == nullptr) {
        std::fprintf(stderr, "xsched-like HAL: %s has no %s\n", runtime_path, lookup.init_symbol);
        return lookup.no_runtime;
    }
    return real_init(flags);
}

}  // namespace xsched_like
