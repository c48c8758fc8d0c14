"""The record a run starts with: the doctor's summary and target facts, ``run.json`` and ``experiment.json``.

The doctor informs the record; it never stops the run (a doctor that fails is recorded as such).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from xsched_ops.environment.base import BaseEnvironment
from xsched_ops.experiment.options import ExperimentOptions
from xsched_ops.results import RunMeta, XSchedFacts, write_run_meta
from xsched_ops.target.base import Target
from xsched_ops.xsched.install import XSchedInstall

# What the run record keeps of the doctor's probe of the target.
PROBE_FACTS = ("python", "python_executable", "devices", "rocm", "torch", "rocm_smi", "nvidia_smi")


def doctor_record(target: Target, options: ExperimentOptions) -> tuple[dict | None, dict]:
    """Doctor summary and target facts from its probe; a doctor that fails is recorded, not fatal."""
    if options.doctor_summary is not None or not options.run_doctor:
        return options.doctor_summary, {}
    try:
        from xsched_ops.doctor import DoctorContext, run_checks
        from xsched_ops.doctor.summary import summarize

        context = DoctorContext(target=target, xsched_prefix=options.xsched_prefix, platform_name=options.platform,
                                route=options.route, probe_torch=options.backend == "torch")
        findings = run_checks(context)
        summary = summarize(findings)
        failing = [{"id": f.id, "severity": f.severity, "title": f.title} for f in findings
                   if f.severity in ("fail", "crash", "warn")]
        probe = context.probe
        facts = {key: probe[key] for key in PROBE_FACTS if key in probe}
        return {"summary": summary, "environment_source": context.environment_source, "findings": failing}, facts
    except Exception as err:  # the doctor informs the record; it must not stop the run
        return {"error": f"could not collect: {type(err).__name__}: {err}"}, {}


def write_run_records(run_dir: Path, run_id: str, target: Target, options: ExperimentOptions,
                      install: XSchedInstall | None, base: BaseEnvironment | None, mark: str) -> dict | None:
    """Write ``run.json`` (with the doctor's record) and ``experiment.json``; the doctor's record."""
    doctor, probe_facts = doctor_record(target, options)
    profile = options.profile
    target_facts = {**asdict(target.facts()), **probe_facts}
    meta = RunMeta(
        run_id=run_id,
        profile_name=profile.name,
        profile=profile.model_dump(mode="json"),
        target_name=target.name if target.kind != "local" else "local",
        target=target_facts,
        doctor=doctor,
        xsched=XSchedFacts(version=install.version if install else None,
                           prefix=install.prefix if install else None,
                           platform=install.platform.name if install else None),
        command_line=list(options.command_line),
        created_wall=time.time(),
    )
    write_run_meta(run_dir, meta)
    details = {"backend": options.backend, "modes": list(dict.fromkeys(options.modes)),
               "repeat": options.repeat, "environment_source": base.source if base else None,
               "repair_env": options.repair_env, "run_mark": mark,
               "xsched_install": install.as_dict() if install else None}
    (run_dir / "experiment.json").write_text(json.dumps(details, indent=2) + "\n", encoding="utf-8")
    return doctor
