"""What the loader knows about the machine: glibc-hwcaps levels, legacy hwcaps, $PLATFORM, $LIB.

Defaults follow Debian 12 (glibc 2.36) on x86-64. ``$LIB`` is ``lib/x86_64-linux-gnu`` on
Debian's multiarch build (``lib64`` on Fedora-like systems). ``$PLATFORM`` is what glibc's
``init_cpu_features`` picks: ``haswell`` when the CPU has AVX2, BMI1/2, LZCNT, MOVBE and POPCNT,
``xeon_phi`` with AVX512ER, else ``x86_64``. Legacy hwcaps subfolders (``tls``, the platform,
``avx512_1``, ``x86_64`` and their combinations) were removed in glibc 2.37; 2.36 still
searches them after the glibc-hwcaps subfolders, which glibc 2.33 introduced.
"""

from __future__ import annotations

from dataclasses import dataclass

_V2 = {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}
_V3 = {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
_V4 = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
_HASWELL = {"avx2", "bmi1", "bmi2", "abm", "movbe", "popcnt"}


@dataclass(frozen=True)
class LoaderPlatform:
    glibc_hwcaps: tuple[str, ...] = ("x86-64-v4", "x86-64-v3", "x86-64-v2")  # priority order
    legacy_hwcaps: tuple[str, ...] = ("tls", "haswell", "avx512_1", "x86_64")  # glibc 2.36 order
    platform: str = "haswell"
    lib: str = "lib/x86_64-linux-gnu"
    system_dirs: tuple[str, ...] = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")
    interpreter: str = "/lib64/ld-linux-x86-64.so.2"
    machine: int = 62  # EM_X86_64
    elf_class: int = 2  # ELFCLASS64

    def subdirectories(self) -> tuple[str, ...]:
        """Every hwcaps subfolder glibc 2.36 tries in a search folder, in order, before the folder itself."""
        legacy = []
        # glibc lists the subsets of the legacy names from the largest, most significant first.
        names = self.legacy_hwcaps
        for mask in range((1 << len(names)) - 1, 0, -1):
            chosen = [names[i] for i in range(len(names)) if mask & (1 << (len(names) - 1 - i))]
            legacy.append("/".join(chosen))
        return tuple(f"glibc-hwcaps/{level}" for level in self.glibc_hwcaps) + tuple(legacy)


def detect_platform(cpuinfo_text: str | None = None) -> LoaderPlatform:
    """The x86-64 platform of this CPU (from /proc/cpuinfo); containers share the host's CPU."""
    if cpuinfo_text is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
                cpuinfo_text = handle.read()
        except OSError:
            return LoaderPlatform()
    flags: set[str] = set()
    for line in cpuinfo_text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    levels = []
    if _V2 <= flags and _V3 <= flags and _V4 <= flags:
        levels.append("x86-64-v4")
    if _V2 <= flags and _V3 <= flags:
        levels.append("x86-64-v3")
    if _V2 <= flags:
        levels.append("x86-64-v2")
    platform = "xeon_phi" if "avx512er" in flags else "haswell" if _HASWELL <= flags else "x86_64"
    legacy = ["tls", platform]
    if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        legacy.append("avx512_1")
    legacy.append("x86_64")
    # The platform name appears once even when it is "x86_64".
    legacy = list(dict.fromkeys(legacy))
    return LoaderPlatform(glibc_hwcaps=tuple(levels), legacy_hwcaps=tuple(legacy), platform=platform)


