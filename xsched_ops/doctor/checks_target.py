"""Checks of the target itself: engine, GPU, ROCm/CUDA, python and torch, the install.

The checks of what XSched does in it (LD_PRELOAD, the real runtime, settings, xserver, IPC, MPS) are in
``checks_xsched``; they register after these (the report's order)."""

from __future__ import annotations

from xsched_ops.doctor.check_ids import CheckId
from xsched_ops.doctor.context import DoctorContext
from xsched_ops.doctor.finding_data import EngineData, FindingData, GpuData, InstallData
from xsched_ops.doctor.findings import Finding, fail, info, ok, warn
from xsched_ops.doctor.registry import check


@check(CheckId.ENGINE, "target", "engine and container")
def check_engine(context: DoctorContext) -> list[Finding]:
    facts = context.target.facts()
    if facts.kind == "local":
        return [ok(CheckId.ENGINE, "target", f"local target {facts.name} (user {facts.user})")]
    return [ok(CheckId.ENGINE, "target",
               f"engine at {facts.engine} answers (API {facts.engine_api_version}); "
               f"container {facts.name} ({facts.id}) is running",
               data=EngineData(engine=facts.engine, api_version=facts.engine_api_version, container=facts.name,
                               image=facts.image))]


@check(CheckId.GPU, "gpu", "GPU device nodes")
def check_gpu_devices(context: DoctorContext) -> list[Finding]:
    platform = context.platform
    devices = context.probe.get("devices")
    if not isinstance(devices, dict):
        return [warn(CheckId.GPU, "gpu", "device nodes: could not collect", str(devices))]
    missing = [node for node in platform.device_nodes if node not in devices]
    flags = " ".join(platform.docker_run_flags)
    if missing:
        return [fail(CheckId.GPU, "gpu", f"no GPU visible: {', '.join(missing)} missing in the target",
                     f"{platform.display} needs {', '.join(platform.device_nodes)} inside the container",
                     f"recreate the container with `docker run {flags} ...`",
                     [f"docker run {flags} ..."], data=GpuData(missing=missing, path=missing[0], platform=platform.name))]
    unusable = [node for node in platform.device_nodes if devices.get(node) is False]
    if unusable:
        return [warn(CheckId.GPU, "gpu", f"device nodes not accessible: {', '.join(unusable)}",
                     fix="add the container user to the video/render group (`--group-add video`)")]
    return [ok(CheckId.GPU, "gpu", f"device nodes present: {', '.join(platform.device_nodes)}")]


@check(CheckId.GPU_RUNTIME, "gpu", "GPU runtime version",
       emits=(CheckId.GPU_RUNTIME_ROCMINFO, CheckId.GPU_RUNTIME_ROCM_SMI))
def check_gpu_runtime(context: DoctorContext) -> list[Finding]:
    probe = context.probe
    findings = []
    if context.platform.name == "hip":
        rocm = probe.get("rocm")
        if isinstance(rocm, dict):
            findings.append(ok(CheckId.GPU_RUNTIME, "gpu", f"ROCm {rocm['version']} ({rocm['source']})", **rocm))
        else:
            findings.append(warn(CheckId.GPU_RUNTIME, "gpu", "ROCm version: could not collect",
                                 str(rocm) if rocm else
                                 f"none of {', '.join(context.platform.runtime_version_files)} and none of the "
                                 f"packages {', '.join(context.platform.runtime_version_packages)}"))
        for tool, key, tool_id in (("rocminfo", "rocminfo", CheckId.GPU_RUNTIME_ROCMINFO),
                                   ("rocm-smi", "rocm_smi", CheckId.GPU_RUNTIME_ROCM_SMI)):
            output = probe.get(key)
            if isinstance(output, dict):
                head = "; ".join(output.get("head", [])[:2])
                findings.append(info(tool_id, "gpu", f"{tool} exited {output['exit_code']}", head))
    else:
        output = probe.get("nvidia_smi")
        if isinstance(output, dict) and output.get("exit_code") == 0:
            findings.append(ok(CheckId.GPU_RUNTIME, "gpu", f"driver: {'; '.join(output['head'])}"))
        else:
            findings.append(warn(CheckId.GPU_RUNTIME, "gpu", "NVIDIA driver: could not collect (nvidia-smi)", str(output)))
    return findings


@check(CheckId.PYTHON_TORCH, "python", "python3 and torch", emits=(CheckId.PYTHON, CheckId.TORCH))
def check_python_torch(context: DoctorContext) -> list[Finding]:
    probe = context.probe
    if "error" in probe:
        return [fail(CheckId.PYTHON_TORCH, "python", "python3 does not run in the target", probe["error"],
                     "install python3 in the container")]
    findings = [ok(CheckId.PYTHON, "python", f"python3 {probe.get('python')} at {probe.get('python_executable')}")]
    torch = probe.get("torch")
    if torch is None:
        if context.probe_torch:
            findings.append(warn(CheckId.TORCH, "python", "torch is not installed in the target",
                                 "the torch backend needs it; the sim backend does not",
                                 "install a ROCm (or CUDA) build of torch in the container"))
        return findings
    if isinstance(torch, str):
        findings.append(warn(CheckId.TORCH, "python", "torch: could not collect", torch))
        return findings
    attribute = context.platform.torch_version_attr
    runtime = torch.get(attribute)
    title = f"torch {torch['version']} ({attribute} {runtime}); GPU available: {torch.get('cuda_available')}"
    if torch.get("device_name"):
        title += f"; {torch['device_name']}"
    severity = ok if torch.get("cuda_available") is True and runtime else warn
    findings.append(severity(CheckId.TORCH, "python", title, "", data=FindingData(**torch)))  # the probe's own keys
    return findings


@check(CheckId.INSTALL, "xsched", "XSched install complete")
def check_install(context: DoctorContext) -> list[Finding]:
    found = context.install_or_error
    if context.install is None:
        return [fail(CheckId.INSTALL, "xsched", "no XSched install found", getattr(found, "one_line", lambda: str(found))(),
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
        findings.append(fail(CheckId.INSTALL, "xsched", f"XSched install at {install.prefix} is incomplete",
                             "missing: " + ", ".join(missing), "rebuild and install XSched (`make install`)",
                             data=InstallData(missing=missing, path=missing[0], prefix=install.prefix)))
    else:
        findings.append(ok(CheckId.INSTALL, "xsched", f"XSched {version} ({install.platform.display}) at {install.prefix}",
                           f"found by {install.found_by}", data=InstallData(**install.as_dict())))
    if bad_links:
        findings.append(warn(CheckId.INSTALL, "xsched", f"softlinks missing or not pointing at {install.platform.shim}",
                             ", ".join(bad_links), "recreate them",
                             [f"ln -sf {install.platform.shim} {link}" for link in bad_links],
                             data=InstallData(softlinks=bad_links)))
    return findings


# The checks of what XSched does in the target, registered after these; re-exported for their callers.
from xsched_ops.doctor.checks_xsched import check_runtime_lib, check_settings, ipc_findings  # noqa: E402, F401
