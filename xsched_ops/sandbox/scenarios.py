"""Sandbox scenarios, as data: one entry of ``SCENARIOS`` per scenario.

A scenario says what goes where in the sandbox container on top of the correct XSched-like
install of its platform (HIP or CUDA) at the seed's prefix, the container's configured ``Env``,
extra set-up commands, what the container's real dynamic loader does when python3 is started
with XSched reachable by the platform's route (HIP: the shim preloaded; CUDA: the lib folder
first on LD_LIBRARY_PATH and libcuda.so.1 loaded with ctypes), and what ``xsched-ops doctor`` is
expected to find. Doctor tests and sandbox tests are driven by
this table; adding a scenario is adding one entry.

Paths of files placed in the container are relative to the install build (see
``xsched_ops.sandbox.install``): ``install/...`` is the correct HIP install, ``install-cuda/...``
the correct CUDA install, ``variants/...`` the broken or old libraries built beside them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from xsched_ops.doctor.check_ids import CheckId  # noqa: F401 - scenarios and their tests name checks by it
from xsched_ops.errors import UsageError
from xsched_ops.xsched import platforms

_HIP = platforms.get("hip")
_CUDA = platforms.get("cuda")
_COMMON = platforms.common()

# Where the install lives in every sandbox: the seed's path.
PREFIX = _COMMON.seed_prefix
LIB = posixpath.join(PREFIX, "lib")
SHIM = posixpath.join(LIB, _HIP.shim)
HAL = posixpath.join(LIB, _HIP.hal)
PREEMPT = posixpath.join(LIB, _COMMON.preempt_lib)
SOFTLINK = posixpath.join(LIB, _HIP.softlinks[0])
XSERVER = posixpath.join(PREFIX, _COMMON.xserver)
TYPEINFO_SYMBOL = _HIP.hal_marker_symbol  # _ZTIN6xsched3hip10HipCommandE
VTABLE_SYMBOL = "_ZTVN6xsched3hip10HipCommandE"

# The CUDA install lives at the same prefix (a CUDA sandbox gets install-cuda/ there instead).
CUDA_SHIM = posixpath.join(LIB, _CUDA.shim)
CUDA_SOFTLINK = posixpath.join(LIB, _CUDA.runtime_libs[0])  # lib/libcuda.so.1 -> the shim
# The sandbox has no NVIDIA driver: the project's own stand-in (docker/xsched-like/
# cuda_driver_standin.cpp) plays the real libcuda.so.1 in the system library folder.
CUDA_DRIVER_STANDIN = posixpath.join(platforms.SYSTEM_LIB_DIRS[1], _CUDA.runtime_libs[0])

# Nor NVIDIA's MPS tools: the project's stand-in control daemon (docker/xsched-like/
# mps_control_standin.py) plays nvidia-cuda-mps-control for --placement mps in CUDA sandboxes.
MPS_CONTROL_STANDIN = "/usr/local/bin/nvidia-cuda-mps-control"

# The install tree (relative to the build) each platform's sandbox gets at PREFIX.
INSTALL_TREES: Mapping[str, str] = MappingProxyType({"hip": "install", "cuda": "install-cuda"})

# Folders of stale libraries that shadow the good ones in some scenarios.
LEGACY_LIB = "/opt/legacy/xsched/lib"
OLD_RELEASE_LIB = "/opt/xsched-1.0/lib"

# A stale IPC file as XSched's xserver leaves it behind (matches platforms' ipc_shm_glob).
STALE_IPC_FILE = "/dev/shm/__IPC_SHM__xsched_server"
# What the doctor names for a stale server message queue (XSched 1.2's key 0x1).
STALE_SERVER_QUEUE = "0x00000001"

# The probe: python3 prints its own memory map, so the caller sees whether the shim was mapped.
PROBE_MARKER = "xsched-sandbox-probe-ok"
_PRINT_MAPS = f"sys.stdout.write(open('/proc/self/maps').read()); print({PROBE_MARKER!r})"
PROBE_ARGV: tuple[str, ...] = ("python3", "-c", f"import sys; {_PRINT_MAPS}")
# With the libpath route nothing is preloaded: the program loads the runtime's soname itself.
CUDA_PROBE_ARGV: tuple[str, ...] = (
    "python3", "-c", f"import ctypes, sys; ctypes.CDLL({_CUDA.runtime_libs[0]!r}); {_PRINT_MAPS}",
)


@dataclass(frozen=True)
class Placement:
    """Copy ``source`` (relative to the install build) to ``destination`` in the container."""

    source: str
    destination: str


@dataclass(frozen=True)
class ExpectedFinding:
    """A finding the doctor must report for a scenario (fields left ``None`` are not checked)."""

    check: str
    severity: str = "fail"
    symbol: str | None = None           # mangled name, e.g. _ZTIN6xsched3hip10HipCommandE
    version: str | None = None          # a symbol version that is missing, e.g. XSCHED_1.2
    needed: str | None = None           # a DT_NEEDED name that does not resolve
    needed_by: str | None = None        # the object that needs the symbol or library
    loaded_provider: str | None = None  # the file the loader picks
    expected_provider: str | None = None  # a file in the container that does provide it
    path: str | None = None             # the file or value the finding is about


@dataclass(frozen=True)
class LoaderOutcome:
    """What the container's real loader does when the probe runs (python3, see ``probe_env``)."""

    succeeds: bool
    stderr_contains: tuple[str, ...] = ()
    shim_mapped: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    loader: LoaderOutcome
    expected: tuple[ExpectedFinding, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    placements: tuple[Placement, ...] = ()
    removals: tuple[str, ...] = ()
    setup: tuple[tuple[str, ...], ...] = ()
    # LD_PRELOAD the probe sets on top of the container's Env; None keeps the container's own.
    probe_preload: str | None = SHIM
    # A folder the probe puts first on LD_LIBRARY_PATH (the libpath route); None leaves it alone.
    probe_library_path: str | None = None
    probe_argv: tuple[str, ...] = PROBE_ARGV
    fixable: bool = True
    alias_of: str | None = None
    platform: str = "hip"  # a key of xsched_ops/xsched/platforms.toml

    @property
    def install_tree(self) -> str:
        """The install tree of the build that goes to PREFIX."""
        return INSTALL_TREES[self.platform]

    @property
    def shim(self) -> str:
        """Where this scenario's platform shim lives in the container."""
        return posixpath.join(LIB, platforms.get(self.platform).shim)

    def expected_findings(self) -> tuple[ExpectedFinding, ...]:
        """This scenario's findings plus the one every sandbox has: no GPU (the no-gpu scenario), so the
        platform's first device node is reported missing."""
        missing_device = ExpectedFinding(check=CheckId.GPU, severity="fail",
                                         path=platforms.get(self.platform).device_nodes[0])
        return (*self.expected, missing_device)

    def probe_env(self, container_env: Mapping[str, str]) -> dict[str, str]:
        """The complete environment of the probe: the container's Env plus XSched reachable by the route
        (``environment.route``'s rule, as the doctor and runs apply it)."""
        from xsched_ops.environment.route import with_xsched_reachable

        environment = dict(container_env)
        if self.probe_preload is not None:
            environment = with_xsched_reachable(environment, "preload", shim_path=self.probe_preload,
                                                lib_dir=posixpath.dirname(self.probe_preload))
        if self.probe_library_path is not None:
            environment = with_xsched_reachable(environment, "libpath", shim_path=self.shim,
                                                lib_dir=self.probe_library_path)
        return environment


_LOADS_OK = LoaderOutcome(succeeds=True, shim_mapped=True)
_MPS_STANDIN_PLACEMENT = Placement("variants/mps-standin/nvidia-cuda-mps-control", MPS_CONTROL_STANDIN)

_OK = Scenario(
    name="ok",
    description="A correct install; python3 with the shim preloaded loads it.",
    loader=_LOADS_OK,
)

_SCENARIO_LIST: tuple[Scenario, ...] = (
    _OK,
    Scenario(
        name="no-gpu",
        description="Same as ok; every sandbox lacks /dev/kfd and /dev/dri, so the GPU check fails.",
        loader=_LOADS_OK,
        alias_of="ok",
        fixable=False,
    ),
    Scenario(
        name="seed",
        description=(
            "The seed report: an older libhalhip.so without xsched::hip::HipCommand sits in "
            f"{LEGACY_LIB}, listed before the good lib folder on LD_LIBRARY_PATH, so the preloaded "
            "shim dies with 'undefined symbol: _ZTIN6xsched3hip10HipCommandE'."
        ),
        env=MappingProxyType({"LD_LIBRARY_PATH": f"{LEGACY_LIB}:{LIB}"}),
        placements=(Placement("variants/hal-old/libhalhip.so", f"{LEGACY_LIB}/libhalhip.so"),),
        loader=LoaderOutcome(
            succeeds=False,
            stderr_contains=("symbol lookup error", f"{SHIM}: undefined symbol: {TYPEINFO_SYMBOL}"),
        ),
        expected=(
            ExpectedFinding(check=CheckId.SHIM_LOADS, symbol=TYPEINFO_SYMBOL, needed_by=SHIM,
                            loaded_provider=f"{LEGACY_LIB}/libhalhip.so", expected_provider=HAL),
            ExpectedFinding(check=CheckId.DUPLICATES, loaded_provider=f"{LEGACY_LIB}/libhalhip.so",
                            expected_provider=HAL),
        ),
    ),
    Scenario(
        name="underlinked",
        description=(
            "The shim was linked without libhalhip.so (no DT_NEEDED on it): ldd looks clean, but "
            "nothing loads the HAL and HipCommand's typeinfo has no provider."
        ),
        placements=(Placement("variants/shim-underlinked/libshimhip.so", SHIM),),
        loader=LoaderOutcome(
            succeeds=False,
            stderr_contains=("symbol lookup error", f"{SHIM}: undefined symbol: {TYPEINFO_SYMBOL}"),
        ),
        expected=(
            ExpectedFinding(check=CheckId.SHIM_LOADS, symbol=TYPEINFO_SYMBOL, needed_by=SHIM,
                            loaded_provider=None, expected_provider=HAL),
        ),
        # Fixable by environment: preloading libhalhip.so before the shim puts the HAL in scope.
    ),
    Scenario(
        name="missing-hal",
        description="libhalhip.so is missing from the install: the shim's DT_NEEDED cannot be found.",
        removals=(HAL,),
        loader=LoaderOutcome(
            succeeds=False,
            stderr_contains=("libhalhip.so: cannot open shared object file",),
        ),
        expected=(
            ExpectedFinding(check=CheckId.INSTALL, path=HAL),
            ExpectedFinding(check=CheckId.SHIM_LOADS, needed="libhalhip.so", needed_by=SHIM),
        ),
        fixable=False,
    ),
    Scenario(
        name="preload-typo",
        description=(
            "The container's LD_PRELOAD names a misspelled shim path: the loader only warns and the "
            "process runs without XSched."
        ),
        env=MappingProxyType({"LD_PRELOAD": f"{LIB}/libshim_hip.so"}),
        probe_preload=None,
        loader=LoaderOutcome(succeeds=True, stderr_contains=("cannot be preloaded",), shim_mapped=False),
        expected=(ExpectedFinding(check=CheckId.PRELOAD, path=f"{LIB}/libshim_hip.so"),),
    ),
    Scenario(
        name="softlink-recursion",
        description=(
            f"{_HIP.runtime_lib_env} points at the shim's own softlink lib/libamdhip64.so: the shim "
            "would load itself as the real HIP runtime."
        ),
        env=MappingProxyType({_HIP.runtime_lib_env: SOFTLINK}),
        loader=_LOADS_OK,
        expected=(ExpectedFinding(check=CheckId.RUNTIME_LIB, path=SOFTLINK),),
    ),
    Scenario(
        name="version-mismatch",
        description=(
            "HAL and shim carry symbol versions; a stale libhalhip.so that defines only XSCHED_1.0 "
            f"shadows the good one from {OLD_RELEASE_LIB}, and the shim needs XSCHED_1.2."
        ),
        env=MappingProxyType({"LD_LIBRARY_PATH": f"{OLD_RELEASE_LIB}:{LIB}"}),
        placements=(
            Placement("variants/versioned/libhalhip.so", HAL),
            Placement("variants/versioned/libshimhip.so", SHIM),
            Placement("variants/hal-v1.0/libhalhip.so", f"{OLD_RELEASE_LIB}/libhalhip.so"),
        ),
        loader=LoaderOutcome(
            succeeds=False,
            stderr_contains=(f"version `XSCHED_1.2' not found (required by {SHIM})",),
        ),
        expected=(
            ExpectedFinding(check=CheckId.SHIM_LOADS, version="XSCHED_1.2", needed_by=SHIM,
                            loaded_provider=f"{OLD_RELEASE_LIB}/libhalhip.so", expected_provider=HAL),
        ),
    ),
    Scenario(
        name="policy-local",
        description=(
            "XSCHED_POLICY=GBL in the container's Env (an old script's value, not a policy name); "
            "setting XSCHED_POLICY gives each process a local scheduler."
        ),
        env=MappingProxyType({"XSCHED_POLICY": "GBL"}),
        loader=_LOADS_OK,
        expected=(ExpectedFinding(check=CheckId.SETTINGS, path="XSCHED_POLICY"),),
    ),
    Scenario(
        name="stale-ipc",
        description=(
            f"Stale IPC state from an earlier run ({STALE_IPC_FILE} and SysV shared memory key "
            f"{_COMMON.ipc_sysv_key}) while no xserver runs."
        ),
        setup=(
            ("sh", "-c", f"printf 'stale xserver state\\n' > {STALE_IPC_FILE}"),
            # A SysV segment outlives the process that made it, as xserver's does.
            ("python3", "-c",
             "import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
             f"sys.exit(0 if libc.shmget({_COMMON.ipc_sysv_key}, 4096, 0o1600) >= 0 else 1)"),
        ),
        loader=_LOADS_OK,
        expected=(ExpectedFinding(check=CheckId.IPC, path=STALE_IPC_FILE),),
    ),
    Scenario(
        name="stale-server-queue",
        description=(
            "The message queue of an xserver that died of SIGTERM or SIGKILL (SysV key 0x1, with unread "
            "events in it) while no xserver runs: every GLB client would run unscheduled, silently."
        ),
        setup=(
            ("python3", "-c",
             "import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
             "queue = libc.msgget(1, 0o1666); "
             "message = ctypes.create_string_buffer(b'\\1\\0\\0\\0\\0\\0\\0\\0connect 4242 stale', 40); "
             "sys.exit(0 if queue >= 0 and libc.msgsnd(queue, message, 20, 0) == 0 else 1)"),
        ),
        loader=_LOADS_OK,
        expected=(ExpectedFinding(check=CheckId.IPC, path=STALE_SERVER_QUEUE),),
    ),
    Scenario(
        name="xserver-running",
        description=(
            f"An xserver already runs in the container ({XSERVER} HPF 50000, started in the background by a "
            "script, so SIGINT does not stop it): a second one would take over its queue, so runs refuse."
        ),
        setup=(("sh", "-c", f"{XSERVER} HPF 50000 > /tmp/xserver.log 2>&1 &"),),
        loader=_LOADS_OK,
        expected=(ExpectedFinding(check=CheckId.XSERVER, severity="ok"),),
    ),
    Scenario(
        name="lcl-no-policy",
        description=(
            "XSCHED_SCHEDULER=LCL in the container's Env without XSCHED_POLICY: XSched falls through to the "
            "app-managed scheduler and nothing is scheduled, with no error."
        ),
        env=MappingProxyType({"XSCHED_SCHEDULER": "LCL"}),
        loader=_LOADS_OK,
        expected=(ExpectedFinding(check=CheckId.SETTINGS, severity="fail"),),
    ),
    Scenario(
        name="cuda-ok",
        description=(
            "A correct CUDA install (libshimcuda.so, libhalcuda.so, the softlinks lib/libcuda.so and "
            f"lib/libcuda.so.1); the sandbox has no NVIDIA driver, so {CUDA_DRIVER_STANDIN} is the "
            "project's own stand-in for the real driver. Nothing special in the container's Env; with "
            "the lib folder first on LD_LIBRARY_PATH, loading libcuda.so.1 maps the shim."
        ),
        platform="cuda",
        placements=(Placement("variants/cuda-driver/libcuda.so.1", CUDA_DRIVER_STANDIN), _MPS_STANDIN_PLACEMENT),
        probe_preload=None,
        probe_library_path=LIB,
        probe_argv=CUDA_PROBE_ARGV,
        loader=_LOADS_OK,
    ),
    Scenario(
        name="cuda-recursion",
        description=(
            f"The CUDA install of cuda-ok, but {_CUDA.runtime_lib_env} points at the shim's own softlink "
            f"lib/libcuda.so.1: the shim would load itself as the real driver (the project's stand-in at "
            f"{CUDA_DRIVER_STANDIN})."
        ),
        platform="cuda",
        env=MappingProxyType({_CUDA.runtime_lib_env: CUDA_SOFTLINK}),
        placements=(Placement("variants/cuda-driver/libcuda.so.1", CUDA_DRIVER_STANDIN), _MPS_STANDIN_PLACEMENT),
        probe_preload=None,
        probe_library_path=LIB,
        probe_argv=CUDA_PROBE_ARGV,
        loader=_LOADS_OK,
        expected=(ExpectedFinding(check=CheckId.RUNTIME_LIB, path=CUDA_SOFTLINK),),
    ),
)

SCENARIOS: Mapping[str, Scenario] = MappingProxyType({scenario.name: scenario for scenario in _SCENARIO_LIST})


def get(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise UsageError(f"unknown sandbox scenario {name!r}", f"choose one of: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


def names() -> list[str]:
    return list(SCENARIOS)
