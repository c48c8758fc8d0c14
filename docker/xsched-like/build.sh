#!/bin/sh
# Build the XSched-like install and the variants the sandbox scenarios use.
#
#   build.sh OUTPUT_DIR [PREFIX]
#
# PREFIX (default: the seed's /data/dockercode/xsched-build/output) is where the install will
# live in the container; it becomes the RUNPATH of the libraries. Output:
#   OUTPUT_DIR/install/                      the correct install (copied to PREFIX)
#     lib/libpreempt.so lib/libhalhip.so lib/libshimhip.so
#     lib/libamdhip64.so lib/libamdhip64.so.1 -> libshimhip.so
#     lib/cmake/XSched/XSchedConfigVersion.cmake  bin/xserver
#   OUTPUT_DIR/variants/hal-old/libhalhip.so            older HAL without xsched::hip::HipCommand
#   OUTPUT_DIR/variants/shim-underlinked/libshimhip.so  shim without DT_NEEDED on libhalhip.so
#   OUTPUT_DIR/variants/versioned/libhalhip.so          HAL with symbol versions XSCHED_1.0 and XSCHED_1.2
#   OUTPUT_DIR/variants/versioned/libshimhip.so         shim linked against it (needs XSCHED_1.2)
#   OUTPUT_DIR/variants/hal-v1.0/libhalhip.so           stale HAL that defines only XSCHED_1.0
#   OUTPUT_DIR/install-cuda/                 the correct CUDA install (copied to PREFIX instead)
#     lib/libpreempt.so lib/libhalcuda.so lib/libshimcuda.so
#     lib/libcuda.so lib/libcuda.so.1 -> libshimcuda.so
#     lib/cmake/XSched/XSchedConfigVersion.cmake  bin/xserver
#   OUTPUT_DIR/variants/cuda-driver/libcuda.so.1        the project's stand-in for the real NVIDIA
#                                                       driver (SONAME libcuda.so.1; no XSched in it)
#   OUTPUT_DIR/variants/mps-standin/nvidia-cuda-mps-control   the project's stand-in for NVIDIA's MPS
#                                                       control daemon (mps_control_standin.py; no GPU)
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 OUTPUT_DIR [PREFIX]" >&2
    exit 2
fi
out=$1
prefix=${2:-/data/dockercode/xsched-build/output}
src=$(cd "$(dirname "$0")" && pwd)
cxx=${CXX:-g++}
cxxflags="-std=c++17 -O2 -g0 -fPIC -Wall -Wextra -Werror"
# --no-as-needed: keep every DT_NEEDED we ask for, whatever the toolchain's default is.
ldflags="-shared -Wl,--no-as-needed -Wl,--enable-new-dtags,-rpath,$prefix/lib"

lib=$out/install/lib
variants=$out/variants
mkdir -p "$lib/cmake/XSched" "$out/install/bin" "$variants/hal-old" "$variants/shim-underlinked" \
    "$variants/versioned" "$variants/hal-v1.0" "$variants/mps-standin" \
    "$out/install-cuda/lib/cmake/XSched" "$out/install-cuda/bin" "$variants/cuda-driver"

set -x
"$cxx" $cxxflags $ldflags -Wl,-soname,libpreempt.so -o "$lib/libpreempt.so" "$src/preempt.cpp"

"$cxx" $cxxflags $ldflags -Wl,-soname,libhalhip.so -o "$lib/libhalhip.so" "$src/hal_hip.cpp" \
    -L"$lib" -lpreempt

"$cxx" $cxxflags $ldflags -Wl,-soname,libshimhip.so -o "$lib/libshimhip.so" "$src/shim_hip.cpp" \
    -L"$lib" -lhalhip -lpreempt
ln -sf libshimhip.so "$lib/libamdhip64.so"
ln -sf libshimhip.so "$lib/libamdhip64.so.1"

"$cxx" $cxxflags -o "$out/install/bin/xserver" "$src/xserver.cpp"
cp "$src/XSchedConfigVersion.cmake" "$lib/cmake/XSched/XSchedConfigVersion.cmake"

# Variants.
"$cxx" $cxxflags $ldflags -Wl,-soname,libhalhip.so -o "$variants/hal-old/libhalhip.so" \
    "$src/hal_hip_old.cpp" -L"$lib" -lpreempt

"$cxx" $cxxflags $ldflags -Wl,-soname,libshimhip.so -o "$variants/shim-underlinked/libshimhip.so" \
    "$src/shim_hip.cpp" -L"$lib" -lpreempt

"$cxx" $cxxflags $ldflags -Wl,-soname,libhalhip.so -Wl,--version-script,"$src/hal_hip_v1.2.map" \
    -o "$variants/versioned/libhalhip.so" "$src/hal_hip.cpp" -L"$lib" -lpreempt

"$cxx" $cxxflags $ldflags -Wl,-soname,libshimhip.so -o "$variants/versioned/libshimhip.so" \
    "$src/shim_hip.cpp" -L"$variants/versioned" -lhalhip -L"$lib" -lpreempt

"$cxx" $cxxflags $ldflags -Wl,-soname,libhalhip.so -Wl,--version-script,"$src/hal_hip_v1.0.map" \
    -DXSCHED_HAL_VERSION='"1.0.0"' -o "$variants/hal-v1.0/libhalhip.so" "$src/hal_hip.cpp" -L"$lib" -lpreempt

# The CUDA install: the same preempt library and xserver, the CUDA HAL and shim, the softlinks.
cuda_lib=$out/install-cuda/lib
cp "$lib/libpreempt.so" "$cuda_lib/libpreempt.so"
"$cxx" $cxxflags $ldflags -Wl,-soname,libhalcuda.so -o "$cuda_lib/libhalcuda.so" "$src/hal_cuda.cpp" \
    -L"$cuda_lib" -lpreempt

"$cxx" $cxxflags $ldflags -Wl,-soname,libshimcuda.so -o "$cuda_lib/libshimcuda.so" "$src/shim_cuda.cpp" \
    -L"$cuda_lib" -lhalcuda -lpreempt
ln -sf libshimcuda.so "$cuda_lib/libcuda.so"
ln -sf libshimcuda.so "$cuda_lib/libcuda.so.1"
cp "$out/install/bin/xserver" "$out/install-cuda/bin/xserver"
cp "$src/XSchedConfigVersion.cmake" "$cuda_lib/cmake/XSched/XSchedConfigVersion.cmake"

# The stand-in real driver: no RUNPATH, nothing of XSched.
"$cxx" $cxxflags -shared -Wl,-soname,libcuda.so.1 -o "$variants/cuda-driver/libcuda.so.1" \
    "$src/cuda_driver_standin.cpp"

# The stand-in MPS control daemon (a script): the sandbox has no GPU and no NVIDIA driver.
cp "$src/mps_control_standin.py" "$variants/mps-standin/nvidia-cuda-mps-control"
chmod 755 "$variants/mps-standin/nvidia-cuda-mps-control"
