// How the XSched-like HALs find the real runtime and forward its entry point to it, as XSched's
// HAL does (FindLibrary; XSCHED-FACTS.md section 6):
//   1. the override variable (XSCHED_HIP_LIB, XSCHED_CUDA_LIB) if that file exists, else a
//      warning "lib set by env ... not found, fallback to dir search";
//   2. the platform's own folders (HIP: /opt/rocm/lib; CUDA: none);
//   3. a fixed folder list, by full path, every name in each folder in turn, the third entry
//      missing its slash as in XSched (so it never matches);
// never LD_LIBRARY_PATH or ld.so.cache. Nothing found: "lib NAME not found" for each name.
//
// If the file found is the shim itself (the variable at the shim or its softlink), the real HAL
// forwards the entry point to itself until the stack overflows: the process dies of SIGSEGV with
// no message (section 1). The stand-in ends the same way at once.
#pragma once

#include <dlfcn.h>
#include <unistd.h>

#include <csignal>
#include <cstddef>
#include <cstdlib>
#include <string>

#include "xsched_log.h"

namespace xsched_like {

struct RuntimeLookup {
    const char *override_variable;      // XSCHED_HIP_LIB, XSCHED_CUDA_LIB
    const char *const *platform_dirs;   // searched first (may be empty)
    std::size_t platform_dir_count;
    const char *const *names;           // file names tried in every folder
    std::size_t name_count;
    const char *shim_marker;            // a function only the shim exports
    const char *init_symbol;            // hipInit, cuInit
    int no_runtime;                     // what the entry point returns when no runtime is found
};

inline const char *const kDefaultDirs[] = {
    "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/local/libx86_64-linux-gnu",
    "/lib/", "/usr/lib/", "/usr/lib64/", "/usr/local/lib",
};

inline bool FileExists(const std::string &path) { return access(path.c_str(), F_OK) == 0; }

inline std::string FindRuntime(const RuntimeLookup &lookup) {
    if (const char *path = std::getenv(lookup.override_variable)) {
        if (FileExists(path)) return path;
        Log("XSCHED", "WARN", "lib set by env %s = %s not found, fallback to dir search", lookup.override_variable, path);
    }
    for (std::size_t dir = 0; dir < lookup.platform_dir_count; ++dir) {
        for (std::size_t name = 0; name < lookup.name_count; ++name) {
            const std::string path = std::string(lookup.platform_dirs[dir]) + "/" + lookup.names[name];
            if (FileExists(path)) return path;
        }
    }
    for (const char *dir : kDefaultDirs) {
        for (std::size_t name = 0; name < lookup.name_count; ++name) {
            const std::string path = std::string(dir) + "/" + lookup.names[name];
            if (FileExists(path)) return path;
        }
    }
    for (std::size_t name = 0; name < lookup.name_count; ++name) Log("XSCHED", "WARN", "lib %s not found", lookup.names[name]);
    return "";
}

inline int ForwardInit(const RuntimeLookup &lookup, unsigned int flags) {
    const std::string path = FindRuntime(lookup);
    if (path.empty()) return lookup.no_runtime;
    void *runtime = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (runtime == nullptr) {
        Log("XSCHED", "WARN", "cannot load %s: %s", path.c_str(), dlerror());
        return lookup.no_runtime;
    }
    if (dlsym(runtime, lookup.shim_marker) != nullptr) {
        // The real HAL would call itself until the stack overflows: SIGSEGV, no message.
        std::signal(SIGSEGV, SIG_DFL);
        std::raise(SIGSEGV);
    }
    using InitFunction = int (*)(unsigned int);
    auto real_init = reinterpret_cast<InitFunction>(dlsym(runtime, lookup.init_symbol));
    if (real_init == nullptr) {
        Log("XSCHED", "WARN", "%s has no %s", path.c_str(), lookup.init_symbol);
        return lookup.no_runtime;
    }
    return real_init(flags);
}

}  // namespace xsched_like
