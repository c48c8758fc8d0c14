// An older HIP HAL (same SONAME, libhalhip.so) from before xsched::hip::HipCommand existed.
// It exports the C entry points the shim calls, but no HipCommand typeinfo or vtable: the
// stale file of the seed report.
#include "preempt.h"

extern "C" const char *xsched_hal_hip_version() { return "1.0.0"; }
extern "C" int xsched_hal_hip_init(unsigned int) { return 0; }
