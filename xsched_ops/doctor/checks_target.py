"""Checks of the target itself: engine, GPU, ROCm/CUDA, python and torch, the install, settings, xserver."""

from __future__ import annotations

import posixpath
import shlex

from xsched_ops import platforms
from xsched_ops.doctor.context import DoctorContext
from xsched_ops.doctor.findings import Finding, fail, info, ok, warn
from xsched_ops.doctor.registry import check
from xsched_ops.envbuilder import is_shim_or_softlink
from xsched_ops.ld_env import split_preload
from xsched_ops.xsched_settings import SETTINGS, is_runtime_lib_variable


@check("engine", "target", "engine and container")
def check_engine(context: DoctorContext) -> list[Finding]:
    facts = context.target.facts()
    if facts.kind == "local":
        return [ok("engine", "target", f"local target {facts.name} (user {facts.user})")]
    return [ok("engine", "target",
               f"engine at {facts.engine} answers (API {facts.engine_api_version}); "
               f"container {facts.name} ({facts.id}) is running",
               engine=facts.engine, api_version=facts.engine_api_version, container=facts.name, image=facts.image)]


@check("gpu", "gpu", "GPU device nodes")
def check_gpu_devices(context: DoctorContext) -> list[Finding]:
    platform = context.platform
    devices = context.probe.get("devices")
    if not isinstance(devices, dict):
        return [warn("gpu", "gpu", "device nodes: could not collect", str(devices))]
    missing = [node for node in platform.device_nodes if node not in devices]
    flags = " ".join(platform.docker_run_flags)
    if missing:
        return [fail("gpu", "gpu", f"no GPU visible: {', '.join(missing)} missing in the target",
                     f"{platform.display} needs {', '.join(platform.device_nodes)} inside the container",
                     f"recreate the container with `docker run {flags} ...`",
                     [f"docker run {flags} ..."], missing=missing, path=missing[0], platform=platform.name)]
    unusable = [node for node in platform.device_nodes if devices.get(node) is False]
    if unusable:
        return [warn("gpu", "gpu", f"device nodes not accessible: {', '.join(unusable)}",
                     fix="add the container user to the video/render group (`--group-add video`)")]
    return [ok("gpu", "gpu", f"device nodes present: {', '.join(platform.device_nodes)}")]


@check("gpu-runtime", "gpu", "GPU runtime version")
def check_gpu_runtime(context: DoctorContext) -> list[Finding]:
    probe = context.probe
    findings = []
    if context.platform.name == "hip":
        rocm = probe.get("rocm")
        if isinstance(rocm, dict):
            findings.append(ok("gpu-runtime", "gpu", f"ROCm {rocm['version']} ({rocm['source']})", **rocm))
        else:
            findings.append(warn("gpu-runtime", "gpu", "ROCm version: could not collect",
                                 str(rocm) if rocm else
                                 f"none of {', '.join(context.platform.runtime_version_files)} and none of the "
                                 f"packages {', '.join(context.platform.runtime_version_packages)}"))
        for tool, key in (("rocminfo", "rocminfo"), ("rocm-smi", "rocm_smi")):
            output = probe.get(key)
            if isinstance(output, dict):
                head = "; ".join(output.get("head", [])[:2])
                findings.append(info(f"gpu-runtime.{tool}", "gpu", f"{tool} exited {output['exit_code']}", head))
    else:
        output = probe.get("nvidia_smi")
        if isinstance(output, dict) and output.get("exit_code") == 0:
            findings.append(ok("gpu-runtime", "gpu", f"driver: {'; '.join(output['head'])}"))
        else:
            findings.append(warn("gpu-runtime", "gpu", "NVIDIA driver: could not collect (nvidia-smi)", str(output)))
    return findings


@check("python-torch", "python", "python3 and torch")
def check_python_torch(context: DoctorContext) -> list[Finding]:
    probe = context.probe
    if "error" in probe:
        return [fail("python-torch", "python", "python3 does not run in the target", probe["error"],
                     "install python3 in the container")]
    findings = [ok("python", "python", f"python3 {probe.get('python')} at {probe.get('python_executable')}")]
    torch = probe.get("torch")
    if torch is None:
        if context.probe_torch:
            findings.append(warn("torch", "python", "torch is not installed in the target",
                                 "the torch backend needs it; the sim backend does not",
                                 "install a ROCm (or CUDA) build of torch in the container"))
        return findings
    if isinstance(torch, str):
        findings.append(warn("torch", "python", "torch: could not collect", torch))
        return findings
    attribute = context.platform.torch_version_attr
    runtime = torch.get(attribute)
    title = f"torch {torch['version']} ({attribute} {runtime}); GPU available: {torch.get('cuda_available')}"
    if torch.get("device_name"):
        title += f"; {torch['device_name']}"
    severity = ok if torch.get("cuda_available") is True and runtime else warn
    findings.append(severity("torch", "python", title, "", **torch))
    return findings


@check("install", "xsched", "XSched install complete")
def check_install(context: DoctorContext) -> list[Finding]:
    found = context.install_or_error
    if context.install is None:
        return [fail("install", "xsched", "no XSched install found", getattr(found, "one_line", lambda: str(found))(),
                     "pass --xsched-prefix PATH")]
    install = context.install
    fs = context.fs
    missing = [path for path in (install.preempt_path, install.hal_path, install.shim_path, install.xserver_path)
               if not fs.exists(path)]
    findings = []
    shim_real = fs.realpath(install.shim_path)
    bad_links = [link for link in install.softlink_paths if not fs.exists(link) or fs.realpath(link) != shim_real]
    version = install.version or "unknown (no XSchedConfigVersion.cmake)"
    if missing:
        findings.append(fail("install", "xsched", f"XSched install at {install.prefix} is incomplete",
                             "missing: " + ", ".join(missing), "rebuild and install XSched (`make install`)",
                             missing=missing, path=missing[0], prefix=install.prefix))
    else:
        findings.append(ok("install", "xsched", f"XSched {version} ({install.platform.display}) at {install.prefix}",
                           f"found by {install.found_by}", **install.as_dict()))
    if bad_links:
        findings.append(warn("install", "xsched", f"softlinks missing or not pointing at {install.platform.shim}",
                             ", ".join(bad_links), "recreate them",
                             [f"ln -sf {install.platform.shim} {link}" for link in bad_links], softlinks=bad_links))
    return findings


@check("preload", "loader", "LD_PRELOAD entries")
def check_preload(context: DoctorContext) -> list[Finding]:
    entries = split_preload(context.environment.get("LD_PRELOAD", ""))
    if not entries:
        return [info("preload", "loader", "LD_PRELOAD is not set in the target's environment")]
    findings = []
    for entry in entries:
        if "/" in entry and not context.fs.isfile(entry):
            suggestion = context.install.shim_path if context.install else None
            findings.append(fail(
                "preload", "loader", f"LD_PRELOAD names {entry}, which does not exist",
                "the loader only warns ('cannot be preloaded ... ignored') and the program runs WITHOUT XSched: "
                "a run labelled XSched would measure the baseline",
                f"use LD_PRELOAD={suggestion}" if suggestion else "fix the path",
                [f"export LD_PRELOAD={shlex.quote(suggestion)}"] if suggestion else [],
                entry=entry, path=entry, suggested=suggestion))
    if not findings:
        findings.append(ok("preload", "loader", f"LD_PRELOAD entries exist: {' '.join(entries)}"))
    return findings


@check("runtime-lib", "xsched", "real runtime discovery")
def check_runtime_lib(context: DoctorContext) -> list[Finding]:
    install = context.install
    if install is None:
        return []
    platform = install.platform
    variable = platform.runtime_lib_env
    value = context.environment.get(variable)
    built = context.fixed_environment
    real = built.real_runtime if built else None
    findings = []
    if value and is_shim_or_softlink(context.fs, install, value):
        findings.append(fail(
            "runtime-lib", "xsched", f"{variable}={value} points at the shim",
            f"{value} resolves to {context.fs.realpath(value)}: the HAL would load the shim as the real runtime "
            "and the shim would call itself",
            f"point {variable} at the real runtime" + (f" ({real})" if real else ""),
            [f"export {variable}={real}"] if real else [], variable=variable, value=value, path=value,
            real_runtime=real))
    elif value and not context.fs.isfile(value):
        findings.append(fail("runtime-lib", "xsched", f"{variable}={value} does not exist",
                             fix=f"point it at {real}" if real else "unset it", variable=variable, value=value, path=value))
    elif value:
        findings.append(ok("runtime-lib", "xsched", f"{variable}={value}", variable=variable, value=value))
    if real is None:
        findings.append(fail("runtime-lib", "xsched", f"no real {platform.runtime_libs[0]} found in the target",
                             f"looked in {', '.join(platform.runtime_search_dirs)} and the system folders",
                             "install the runtime (ROCm/CUDA driver) in the container"))
    elif not value:
        findings.append(ok("runtime-lib", "xsched", f"{variable} unset; the HAL will find the real runtime {real}",
                           variable=variable, real_runtime=real))
    return findings


@check("settings", "xsched", "XSched settings in the environment")
def check_settings(context: DoctorContext) -> list[Finding]:
    findings = []
    for name, value in sorted(context.environment.items()):
        if not name.startswith("XSCHED_"):
            continue
        if is_runtime_lib_variable(name):
            continue
        spec = SETTINGS.get(name)
        if spec is None:
            findings.append(warn("settings", "xsched", f"unknown XSched setting {name}",
                                 "XSched ignores it (a typo?)", f"known settings: {', '.join(SETTINGS)}",
                                 variable=name, value=value))
            continue
        if name == "XSCHED_POLICY":
            if value == "GBL":
                findings.append(fail(
                    "settings", "xsched", "XSCHED_POLICY=GBL is not a policy name",
                    "older evaluation scripts wrote GBL; XSched reads XSCHED_POLICY as the policy of a LOCAL "
                    "scheduler, so cross-process priorities do not apply",
                    "unset XSCHED_POLICY and use XSCHED_SCHEDULER=GLB with `xserver HPF 50000`",
                    ["unset XSCHED_POLICY", "export XSCHED_SCHEDULER=GLB"], variable=name, value=value, path=name))
            else:
                findings.append(warn(
                    "settings", "xsched", f"XSCHED_POLICY={value} gives each process a local scheduler",
                    "XSCHED_SCHEDULER is ignored; two processes do not see each other's priorities",
                    "unset XSCHED_POLICY for cross-process priorities (XSCHED_SCHEDULER=GLB + xserver)",
                    ["unset XSCHED_POLICY"], variable=name, value=value, path=name))
            continue
        problem = spec.problem(value)
        if problem:
            findings.append(fail("settings", "xsched", f"{name}: {problem}", spec.meaning,
                                 f"set {name} to a valid value", variable=name, value=value, path=name))
    threshold = context.environment.get("XSCHED_AUTO_XQUEUE_THRESHOLD")
    batch = context.environment.get("XSCHED_AUTO_XQUEUE_BATCH_SIZE")
    if threshold and batch and threshold.isdigit() and batch.isdigit() and int(batch) > int(threshold):
        findings.append(fail("settings", "xsched", "XSCHED_AUTO_XQUEUE_BATCH_SIZE exceeds the threshold",
                             f"batch {batch} > threshold {threshold}", "keep 1 <= batch size <= threshold"))
    if not findings:
        findings.append(ok("settings", "xsched", "no conflicting XSched settings in the target's environment"))
    return findings


@check("xserver", "xsched", "scheduler daemon and IPC state")
def check_xserver(context: DoctorContext) -> list[Finding]:
    layout = platforms.common()
    probe = context.probe
    findings = []
    install = context.install
    if install is not None and not context.fs.isfile(install.xserver_path):
        findings.append(fail("xserver", "xsched", f"{install.xserver_path} missing", fix="rebuild XSched"))
    processes = probe.get("processes") if isinstance(probe.get("processes"), list) else []
    running = [p for p in processes if p["argv"] and posixpath.basename(p["argv"][0]) == "xserver"]
    ports = probe.get("listening_ports") if isinstance(probe.get("listening_ports"), list) else []
    port = layout.default_port
    if running:
        findings.append(ok("xserver", "xsched", f"xserver running: {' '.join(running[0]['argv'])} (pid {running[0]['pid']})"))
    elif port in ports:
        findings.append(warn("xserver.port", "xsched", f"port {port} is in use, but not by xserver",
                             fix=f"stop what listens on {port} or give xserver another port", port=port))
    else:
        findings.append(info("xserver", "xsched", f"xserver not running; port {port} is free",
                             "xsched-ops run starts it with the profile's policy and port"))
    shm_files = probe.get("ipc_shm_files") if isinstance(probe.get("ipc_shm_files"), list) else []
    segments = probe.get("sysv_shm") if isinstance(probe.get("sysv_shm"), list) else []
    stale_key = [s for s in segments if s["key"] == f"0x{int(layout.ipc_sysv_key, 16):08x}"]
    if (shm_files or stale_key) and not running:
        commands = []
        if shm_files:
            commands.append("rm -f " + " ".join(shlex.quote(f) for f in shm_files))
        if stale_key:
            commands.append(f"ipcrm --shmem-key {layout.ipc_sysv_key}")
        findings.append(fail("ipc", "xsched", "stale XSched IPC state with no xserver running",
                             f"{len(shm_files)} file(s) {layout.ipc_shm_glob}; SysV key {layout.ipc_sysv_key}: "
                             f"{'present' if stale_key else 'absent'}. A new xserver or process may attach to it",
                             "remove it (doctor --fix does)", commands, files=shm_files,
                             path=shm_files[0] if shm_files else layout.ipc_sysv_key, sysv_key_present=bool(stale_key)))
    return findings
