"""Checks of what XSched does in the target: LD_PRELOAD entries, the real runtime its HAL opens, its
settings, the xserver and XSched's IPC state, NVIDIA MPS."""

from __future__ import annotations

import posixpath
import shlex

from xsched_ops.doctor.check_ids import CheckId
from xsched_ops.doctor.checks_loader import python_path
from xsched_ops.doctor.context import DoctorContext
from xsched_ops.doctor.finding_data import (
    IpcData,
    MpsData,
    PreloadData,
    RuntimeLibData,
    SettingData,
    XserverPortData,
)
from xsched_ops.doctor.findings import Finding, fail, info, ok, warn
from xsched_ops.doctor.registry import check
from xsched_ops.environment.builder import is_shim_or_softlink
from xsched_ops.environment.loader_vars import split_preload
from xsched_ops.xsched import ipc_state, platforms
from xsched_ops.xsched.hal_lookup import HalRuntimeLookup, hal_runtime_lookup
from xsched_ops.xsched.settings import (
    POLICIES,
    SCHEDULERS,
    SETTINGS,
    effective_scheduler,
    is_runtime_lib_variable,
)


@check(CheckId.PRELOAD, "loader", "LD_PRELOAD entries")
def check_preload(context: DoctorContext) -> list[Finding]:
    entries = split_preload(context.environment.get("LD_PRELOAD", ""))
    if not entries:
        return [info(CheckId.PRELOAD, "loader", "LD_PRELOAD is not set in the target's environment")]
    findings = []
    for entry in entries:
        if "/" in entry and not context.fs.isfile(entry):
            suggestion = context.install.shim_path if context.install else None
            findings.append(fail(CheckId.PRELOAD, "loader", f"LD_PRELOAD names {entry}, which does not exist",
                "the loader only warns ('cannot be preloaded ... ignored') and the program runs WITHOUT XSched: "
                "a run labelled XSched would measure the baseline",
                f"use LD_PRELOAD={suggestion}" if suggestion else "fix the path",
                [f"export LD_PRELOAD={shlex.quote(suggestion)}"] if suggestion else [],
                data=PreloadData(entry=entry, path=entry, suggested=suggestion)))
    if not findings:
        findings.append(ok(CheckId.PRELOAD, "loader", f"LD_PRELOAD entries exist: {' '.join(entries)}"))
    return findings


_RECURSION_CONSEQUENCE = (
    "the HAL opens the shim as the real runtime and calls itself until the stack overflows: the process "
    "dies of SIGSEGV (exit -11) with no message, right after its start-up line (`using ... scheduler`)")


def _hal_lookup_summary(lookup: HalRuntimeLookup) -> str:
    """What the HAL's search does, in words: the file it opens and how, or that it finds none."""
    if lookup.path is None:
        return (f"it finds no runtime (tried {', '.join(lookup.tried)}; it never reads LD_LIBRARY_PATH or "
                f"ld.so.cache) and warns {'; '.join(repr(w) for w in lookup.warnings)}")
    how = {"variable": f"set by {lookup.variable}", "platform folder": "found in the platform's own folder",
           "system folder": "found in its list of system folders"}[lookup.found_by or "system folder"]
    resolved = f" (-> {lookup.resolved})" if lookup.resolved and lookup.resolved != lookup.path else ""
    return f"the HAL opens {lookup.path}{resolved}, {how}"


@check(CheckId.RUNTIME_LIB, "xsched", "real runtime discovery")
def check_runtime_lib(context: DoctorContext) -> list[Finding]:
    """Which file XSched's HAL really opens as the real runtime (hal_lookup), and whether it is one."""
    install = context.install
    if install is None:
        return []
    platform = install.platform
    variable = platform.runtime_lib_env
    value = context.environment.get(variable)
    built = context.fixed_environment
    real = built.real_runtime if built else None
    lookup = hal_runtime_lookup(platform, context.environment, context.fs)
    chosen_is_shim = lookup.path is not None and is_shim_or_softlink(context.fs, install, lookup.path)
    data = RuntimeLibData(variable=variable, value=value, hal_runtime=lookup.path, found_by=lookup.found_by,
                          tried=list(lookup.tried), warnings=list(lookup.warnings), real_runtime=real)
    fix_to_real = f"point {variable} at the real runtime" + (f" ({real})" if real else "")
    commands = [f"export {variable}={shlex.quote(real)}"] if real else []
    summary = _hal_lookup_summary(lookup)
    findings = []
    if lookup.found_by == "variable":
        if chosen_is_shim:
            findings.append(fail(CheckId.RUNTIME_LIB, "xsched", f"{variable}={value} points at the shim",
                f"{value} resolves to {context.fs.realpath(lookup.path or '')}: {_RECURSION_CONSEQUENCE}",
                fix_to_real, commands, data=data, path=value))
        else:
            findings.append(ok(CheckId.RUNTIME_LIB, "xsched", f"{variable}={value}: {summary}", data=data, path=value))
        return findings
    if value is not None:
        # Set, but no such file: XSched only warns and searches its folders.
        consequence = summary if not chosen_is_shim else f"the search picks the shim {lookup.path}"
        findings.append(warn(CheckId.RUNTIME_LIB, "xsched", f"{variable}={value} does not exist",
            f"XSched does not refuse it: it warns '{lookup.warnings[0]}' and searches its folders: {consequence}",
            fix_to_real if real else f"unset {variable}", commands if real else [f"unset {variable}"],
            data=data, path=value))
    if lookup.path is None:
        findings.append(fail(CheckId.RUNTIME_LIB, "xsched", f"the HAL finds no real {platform.hal_search_names[0]}",
            f"{summary}. The shim's first call into the runtime then fails"
            + (f"; the real runtime is at {real}, outside the HAL's folders" if real else ""),
            fix_to_real if real else "install the runtime (ROCm/CUDA driver) in the container, or set "
            f"{variable} to it", commands, data=data, path=variable))
    elif chosen_is_shim:
        findings.append(fail(CheckId.RUNTIME_LIB, "xsched", f"the HAL's folder search picks the shim {lookup.path}",
            f"{summary}: {_RECURSION_CONSEQUENCE}", fix_to_real, commands, data=data, path=lookup.path))
    elif value is None:
        findings.append(ok(CheckId.RUNTIME_LIB, "xsched", f"{variable} unset; {summary}", data=data, path=lookup.path))
    return findings


# The automatic XQueue knobs XSched reads when it creates an XQueue; a value out of range is not
# refused: the creation fails with a warning and the process runs unscheduled.
_XQUEUE_KNOBS = ("XSCHED_AUTO_XQUEUE_LEVEL", "XSCHED_AUTO_XQUEUE_THRESHOLD", "XSCHED_AUTO_XQUEUE_BATCH_SIZE",
                 "XSCHED_AUTO_XQUEUE_PRIORITY")
_APP_MANAGED = ("the process prints only 'using app-managed scheduler' and NOTHING is scheduled "
                "(no error, no warning): a run labelled XSched measures the baseline")
# Preemption levels above 1 that the HIP platform does not implement.
_HIP_LEVELS_NOT_IMPLEMENTED = (2, 3)


def _settings_integer(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _scheduler_findings(env: dict[str, str]) -> list[Finding]:
    """XSCHED_POLICY / XSCHED_SCHEDULER, judged by the scheduler the process really gets."""
    effective = effective_scheduler(env)
    policy, scheduler = env.get("XSCHED_POLICY"), env.get("XSCHED_SCHEDULER")
    findings = []
    if policy is not None and policy not in POLICIES:
        why = ("older evaluation scripts wrote GBL; " if policy == "GBL" else "") + \
            f"XSched 1.2 knows no policy {policy!r} ({', '.join(POLICIES)})"
        fix = "unset XSCHED_POLICY and use XSCHED_SCHEDULER=GLB with `xserver HPF 50000`"
        commands = ["unset XSCHED_POLICY", "export XSCHED_SCHEDULER=GLB"]
        if effective.kind == "app":
            findings.append(fail(CheckId.SETTINGS, "xsched", f"XSCHED_POLICY={policy} is not a policy name: nothing is scheduled",
                f"{why}: it falls through to the app-managed scheduler; {_APP_MANAGED}", fix, commands,
                data=SettingData(variable="XSCHED_POLICY", value=policy, path="XSCHED_POLICY",
                                 scheduler=effective.kind)))
        else:
            findings.append(warn(CheckId.SETTINGS, "xsched", f"XSCHED_POLICY={policy} is not a policy name (ignored)",
                f"{why}; {effective.reason}", "unset XSCHED_POLICY", ["unset XSCHED_POLICY"],
                data=SettingData(variable="XSCHED_POLICY", value=policy, path="XSCHED_POLICY",
                                 scheduler=effective.kind)))
    elif policy is not None:
        findings.append(warn(CheckId.SETTINGS, "xsched", f"XSCHED_POLICY={policy} gives each process a local scheduler",
            "XSCHED_SCHEDULER is ignored; two processes do not see each other's priorities",
            "unset XSCHED_POLICY for cross-process priorities (XSCHED_SCHEDULER=GLB + xserver)",
            ["unset XSCHED_POLICY"], data=SettingData(variable="XSCHED_POLICY", value=policy, path="XSCHED_POLICY",
                                                      scheduler=effective.kind)))
    if scheduler is not None and scheduler not in ("GLB", "APP") and effective.kind == "app":
        what = ("LCL does not make a local scheduler by itself: without a valid XSCHED_POLICY it falls through "
                "to the app-managed scheduler" if scheduler == "LCL"
                else f"{scheduler!r} is not one of {', '.join(SCHEDULERS)}: the app-managed scheduler")
        findings.append(fail(CheckId.SETTINGS, "xsched", f"XSCHED_SCHEDULER={scheduler} without a valid XSCHED_POLICY: nothing is scheduled",
            f"{what}; {_APP_MANAGED}",
            "use XSCHED_SCHEDULER=GLB with an xserver (`xserver HPF 50000`), or set XSCHED_POLICY (e.g. HPF) "
            "for a local scheduler in each process", ["export XSCHED_SCHEDULER=GLB"],
            data=SettingData(variable="XSCHED_SCHEDULER", value=scheduler, path="XSCHED_SCHEDULER",
                             scheduler=effective.kind)))
    return findings


def _xqueue_findings(env: dict[str, str], platform_name: str | None) -> list[Finding]:
    """The automatic XQueue knobs: out of range is not refused, the XQueue is just not created."""
    findings = []
    threshold_value = env.get("XSCHED_AUTO_XQUEUE_THRESHOLD")
    threshold = _settings_integer(threshold_value if threshold_value is not None
                                  else SETTINGS["XSCHED_AUTO_XQUEUE_THRESHOLD"].default)
    for name in _XQUEUE_KNOBS:
        value = env.get(name)
        if value is None:
            continue
        spec = SETTINGS[name]
        number = _settings_integer(value)
        problem = spec.problem(value)
        allowed = f"{spec.minimum}..{spec.maximum}"
        if name == "XSCHED_AUTO_XQUEUE_BATCH_SIZE" and problem is None and threshold is not None \
                and number is not None and number > threshold:
            problem = f"{number} exceeds the threshold {threshold}" + (
                "" if threshold_value is not None else " (the default: XSCHED_AUTO_XQUEUE_THRESHOLD is unset)")
        if name == "XSCHED_AUTO_XQUEUE_BATCH_SIZE":
            allowed = f"1..threshold ({threshold if threshold is not None else '?'})"
        if problem:
            level = env.get("XSCHED_AUTO_XQUEUE_LEVEL", "1")
            findings.append(fail(CheckId.SETTINGS, "xsched", f"{name}={value}: {problem}; the process runs unscheduled",
                f"{spec.meaning} ({allowed}). XSched does not refuse it: it only warns, once per stream, "
                f"'fail to auto-create XQueue (level-{level}) for HwQueue ..., err: 2', and runs the process "
                "unscheduled (exit 0)", f"set {name} within {allowed}",
                [f"export {name}={_suggested_knob_value(name, threshold)}"],
                data=SettingData(variable=name, value=value, path=name)))
        elif name == "XSCHED_AUTO_XQUEUE_LEVEL" and platform_name == "hip" \
                and number in _HIP_LEVELS_NOT_IMPLEMENTED:
            findings.append(fail(CheckId.SETTINGS, "xsched", f"{name}={value}: HIP implements level 1 only",
                "HIP implements level 1 only (levels 2-3: not yet implemented): no XQueue of this level is "
                "created and the process runs unscheduled", f"set {name}=1", [f"export {name}=1"],
                data=SettingData(variable=name, value=value, path=name)))
    return findings


def _suggested_knob_value(name: str, threshold: int | None) -> str:
    if name == "XSCHED_AUTO_XQUEUE_LEVEL":
        return "1"
    if name == "XSCHED_AUTO_XQUEUE_BATCH_SIZE" and threshold is not None and threshold >= 1:
        return str(max(1, threshold // 2))
    return SETTINGS[name].default or "1"


@check(CheckId.SETTINGS, "xsched", "XSched settings in the environment")
def check_settings(context: DoctorContext) -> list[Finding]:
    """Lint of the XSCHED_* variables by what XSched 1.2 really does with them (XSCHED-FACTS 1, 7)."""
    env = context.environment
    install = context.install
    findings = []
    for name, value in sorted(env.items()):
        if not name.startswith("XSCHED_"):
            continue
        if is_runtime_lib_variable(name):
            continue
        spec = SETTINGS.get(name)
        if spec is None:
            findings.append(warn(CheckId.SETTINGS, "xsched", f"unknown XSched setting {name}",
                                 "XSched ignores it (a typo?)", f"known settings: {', '.join(SETTINGS)}",
                                 data=SettingData(variable=name, value=value)))
            continue
        if name in ("XSCHED_POLICY", "XSCHED_SCHEDULER") or name in _XQUEUE_KNOBS:
            continue  # judged below, by their effect
        problem = spec.problem(value)
        if problem:
            findings.append(fail(CheckId.SETTINGS, "xsched", f"{name}: {problem}", spec.meaning,
                                 f"set {name} to a valid value", data=SettingData(variable=name, value=value, path=name)))
    findings.extend(_scheduler_findings(env))
    findings.extend(_xqueue_findings(env, install.platform.name if install is not None else None))
    if not findings:
        findings.append(ok(CheckId.SETTINGS, "xsched", "no conflicting XSched settings in the target's environment"))
    return findings


@check(CheckId.XSERVER, "xsched", "scheduler daemon and IPC state", emits=(CheckId.IPC, CheckId.XSERVER_PORT))
def check_xserver(context: DoctorContext) -> list[Finding]:
    layout = platforms.common()
    probe = context.probe
    findings = []
    install = context.install
    if install is not None and not context.fs.isfile(install.xserver_path):
        findings.append(fail(CheckId.XSERVER, "xsched", f"{install.xserver_path} missing", fix="rebuild XSched"))
    processes = probe.get("processes") if isinstance(probe.get("processes"), list) else []
    running = [p for p in processes if p["argv"] and posixpath.basename(p["argv"][0]) == "xserver"]
    ports = probe.get("listening_ports") if isinstance(probe.get("listening_ports"), list) else []
    port = layout.default_port
    if running:
        findings.append(ok(CheckId.XSERVER, "xsched", f"xserver running: {' '.join(running[0]['argv'])} (pid {running[0]['pid']})"))
    elif port in ports:
        findings.append(warn(CheckId.XSERVER_PORT, "xsched", f"port {port} is in use, but not by xserver",
                             fix=f"stop what listens on {port} or give xserver another port",
                             data=XserverPortData(port=port)))
    else:
        findings.append(info(CheckId.XSERVER, "xsched", f"xserver not running; port {port} is free",
                             "xsched-ops run starts it with the profile's policy and port"))
    report = probe.get("xsched_ipc")
    state = (ipc_state.state_from_report(report) if isinstance(report, dict)
             else ipc_state.inspect(context.target, python_path(context)))
    findings.extend(ipc_findings(state))
    return findings


def ipc_findings(state: ipc_state.IpcState) -> list[Finding]:
    """Findings (id "ipc") on XSched's IPC state; stale state is a fail, live state is fine."""
    layout = platforms.common()
    if not state.readable:
        return [info(CheckId.IPC, "xsched", "XSched IPC state could not be read (/proc/sysvipc/msg)")]
    problems = []
    if state.stale_server_queue and state.server_queue is not None:
        queue = state.server_queue
        problems.append(f"the xserver's message queue (key {queue.key}, {queue.messages} unread message(s)) is left "
                        "from an xserver that no longer runs: GLB clients would run unscheduled, silently")
    stale_clients = state.stale_client_queues
    if stale_clients:
        problems.append(f"{len(stale_clients)} client message queue(s) of exited processes (keys "
                        f"{', '.join(queue.key for queue in stale_clients)})")
    if state.stale_shm:
        problems.append(f"older XSched state: {len(state.shm_files)} file(s) {layout.ipc_shm_glob}, SysV shared "
                        f"memory key {layout.ipc_sysv_key} {'present' if state.shm_key_present else 'absent'}")
    if not problems:
        live = "; a live xserver's queue" if state.server_queue is not None else ""
        return [ok(CheckId.IPC, "xsched", "no stale XSched IPC state" + live)]
    first_path = (state.server_queue.key if state.stale_server_queue and state.server_queue
                  else state.shm_files[0] if state.shm_files else layout.ipc_sysv_key)
    return [fail(CheckId.IPC, "xsched", "stale XSched IPC state with no xserver to own it", "; ".join(problems),
                 "remove it (doctor --fix does; a running xserver's and live clients' state is kept)",
                 state.removal_commands(), data=IpcData(
                     files=state.shm_files, path=first_path, server_queue_stale=state.stale_server_queue,
                     sysv_key_present=state.shm_key_present, stale_client_queues=[queue.key for queue in stale_clients]))]


# One exec: is MPS available, does a daemon run, the GPU's compute mode (each line "key value").
_MPS_FACTS = r"""
printf 'control %s\n' "$(command -v nvidia-cuda-mps-control || echo -)"
for pid in $(ls /proc | grep -E '^[0-9]+$'); do
  name=$(tr '\0' '\n' < /proc/$pid/cmdline 2>/dev/null | head -n 1)
  case "${name##*/}" in nvidia-cuda-mps-control|nvidia-cuda-mps-server) printf 'daemon %s %s\n' "$pid" "$name";; esac
done
if command -v nvidia-smi >/dev/null 2>&1; then
  printf 'compute_mode %s\n' "$(nvidia-smi --query-gpu=compute_mode --format=csv,noheader 2>/dev/null | head -n 1)"
fi
"""


@check(CheckId.MPS, "target", "NVIDIA MPS")
def check_mps(context: DoctorContext) -> list[Finding]:
    install = context.install
    nvidia = install is not None and install.platform.name == "cuda"
    if not nvidia and not (context.probe.get("tools") or {}).get("nvidia-smi"):
        return []
    result = context.target.exec(["sh", "-c", _MPS_FACTS], timeout=60)
    facts: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        facts.setdefault(key, []).append(value.strip())
    control = (facts.get("control") or ["-"])[0]
    daemons = facts.get("daemon", [])
    mode = (facts.get("compute_mode") or ["unknown (no nvidia-smi)"])[0] or "unknown"
    if control == "-":
        return [info(CheckId.MPS, "target", "NVIDIA MPS not available: no nvidia-cuda-mps-control in the target",
                     "--placement mps needs it", data=MpsData(compute_mode=mode))]
    if "Prohibited" in mode:
        return [warn(CheckId.MPS, "target", f"NVIDIA MPS available ({control}), but the compute mode is {mode}",
                     "no CUDA context can be made: --placement mps (and every run) would fail",
                     "nvidia-smi -c DEFAULT (or EXCLUSIVE_PROCESS for MPS)", data=MpsData(compute_mode=mode, control=control))]
    if daemons:
        return [warn(CheckId.MPS, "target", f"an MPS daemon already runs: {'; '.join(daemons)}",
                     "processes that find its pipe folder share its context; --placement mps refuses to run beside "
                     "it", "stop it: echo quit | nvidia-cuda-mps-control (with its CUDA_MPS_PIPE_DIRECTORY)",
                     data=MpsData(compute_mode=mode, control=control, daemons=daemons))]
    return [ok(CheckId.MPS, "target", f"NVIDIA MPS available ({control}), no daemon running, compute mode {mode}",
               data=MpsData(compute_mode=mode, control=control))]
