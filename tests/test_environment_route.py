"""XSched reachable by route (one rule for the doctor, runs and the sandbox probe), the stored
environment as a model, and the base environment a target's processes start from. No Docker: the
stored environment goes through this host's own target (``--local``) in a temporary config folder."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from xsched_ops.doctor.checks_loader import environment_under_xsched
from xsched_ops.doctor.context import DoctorContext
from xsched_ops.environment import stored_env
from xsched_ops.environment.base import SOURCE_CONFIGURED, SOURCE_STORED, base_environment
from xsched_ops.environment.roles import as_configured_environment
from xsched_ops.environment.route import with_xsched_reachable
from xsched_ops.environment.stored_env import StoredEnvironment
from xsched_ops.sandbox import scenarios
from xsched_ops.target.local import LocalTarget
from xsched_ops.xsched import platforms
from xsched_ops.xsched.install import XSchedInstall
from xsched_ops.xsched.settings import RoleScheduling

LIB = scenarios.LIB
SHIM = scenarios.SHIM


def reach(env: dict[str, str], route: str) -> dict[str, str]:
    return with_xsched_reachable(env, route, shim_path=SHIM, lib_dir=LIB)


def test_preload_adds_the_shim_in_front_unless_it_is_there() -> None:
    assert reach({"PATH": "/usr/bin"}, "preload") == {"PATH": "/usr/bin", "LD_PRELOAD": SHIM}
    assert reach({"LD_PRELOAD": "/a.so:/b.so"}, "preload")["LD_PRELOAD"] == f"{SHIM} /a.so /b.so"
    kept = {"LD_PRELOAD": f"/a.so {SHIM}"}
    assert reach(kept, "preload") == kept
    # A misspelled shim stays (the loader only warns about it); the real one is added.
    assert reach({"LD_PRELOAD": f"{LIB}/libshim_hip.so"}, "preload")["LD_PRELOAD"] == \
        f"{SHIM} {LIB}/libshim_hip.so"


def test_libpath_puts_the_lib_folder_first_and_keeps_the_rest_as_written() -> None:
    assert reach({}, "libpath") == {"LD_LIBRARY_PATH": LIB}
    assert reach({"LD_LIBRARY_PATH": "/stale::/x"}, "libpath")["LD_LIBRARY_PATH"] == f"{LIB}:/stale::/x"
    first = {"LD_LIBRARY_PATH": f"{LIB}:/x", "LD_PRELOAD": "/p.so"}
    assert reach(first, "libpath") == first


def test_the_input_is_never_changed() -> None:
    env = {"LD_PRELOAD": "/a.so"}
    reach(env, "preload")
    reach(env, "libpath")
    assert env == {"LD_PRELOAD": "/a.so"}


@pytest.mark.parametrize("scenario_name,route,container_env", [
    ("seed", "preload", {"PATH": "/usr/bin", "LD_LIBRARY_PATH": f"{scenarios.LEGACY_LIB}:{LIB}"}),
    ("cuda-ok", "libpath", {"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/usr/local/lib"}),
])
def test_the_doctor_a_run_and_the_sandbox_probe_add_the_same(scenario_name: str, route: str,
                                                             container_env: dict[str, str]) -> None:
    scenario = scenarios.get(scenario_name)
    install = XSchedInstall(prefix=scenarios.PREFIX, platform=platforms.get(scenario.platform), version=None,
                            found_by="test")
    probe = scenario.probe_env(container_env)
    doctor = environment_under_xsched(SimpleNamespace(environment=container_env, install=install, route=route))
    scheduling = RoleScheduling()
    run = as_configured_environment(container_env, install, route, scheduling)
    for name in scheduling.as_environment():
        run.pop(name)
    assert probe == doctor == run
    assert probe != container_env


def test_the_stored_document_is_a_model_and_stale_documents_are_none() -> None:
    document = {"version": stored_env.SCHEMA_VERSION, "created": "2026-12-01T00:00:00+0000",
                "env": {"LD_PRELOAD": SHIM}, "based_on": {"PATH": "/usr/bin"}, "route": "preload"}
    stored = StoredEnvironment.from_document(document)
    assert stored is not None
    assert (dict(stored.env), dict(stored.based_on), stored.details) == (
        {"LD_PRELOAD": SHIM}, {"PATH": "/usr/bin"}, {"route": "preload"})
    assert stored.to_document() == document
    assert StoredEnvironment.from_document({**document, "version": 2}) is None
    assert StoredEnvironment.from_document({**document, "env": {"X": 1}}) is None
    assert StoredEnvironment.from_document(["not", "a", "document"]) is None


def test_the_base_is_the_stored_environment_when_there_is_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("XSCHED_OPS_TEST_MARK", "configured")
    target = LocalTarget()
    base = base_environment(target)
    assert base.source == SOURCE_CONFIGURED and not base.stored and base.stored_document is None
    assert base.env["XSCHED_OPS_TEST_MARK"] == "configured"

    path = stored_env.save(target, {"PATH": "/usr/bin", "LD_PRELOAD": SHIM}, {"PATH": "/bin"}, {"route": "preload"})
    assert path == str(tmp_path / "xsched-ops" / "environment.json")
    base = base_environment(target)
    assert base.source == SOURCE_STORED and base.stored
    assert base.env == {"PATH": "/usr/bin", "LD_PRELOAD": SHIM}
    assert base.stored_document is not None and base.stored_document.details == {"route": "preload"}
    assert base_environment(target, use_stored=False).source == SOURCE_CONFIGURED

    # The doctor starts from the same base, by the same rule.
    context = DoctorContext(target=target)
    assert (context.environment_source, context.environment) == (SOURCE_STORED, base.env)
    assert context.stored == base.stored_document
    ignoring = DoctorContext(target=target, use_stored_environment=False)
    assert ignoring.environment_source == SOURCE_CONFIGURED and ignoring.stored is None

    Path(path).write_text(json.dumps({"version": 99, "env": {}}))
    assert base_environment(target).source == SOURCE_CONFIGURED
    assert stored_env.remove(target) and not stored_env.remove(target)
