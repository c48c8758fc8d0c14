"""The doctor's contract, without a target: registered and emitted check ids agree, and each kind of
finding data is a typed model whose JSON form keeps the keys its maker set."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

from xsched_ops.doctor import registry
from xsched_ops.doctor.check_ids import CheckId
from xsched_ops.doctor.finding_data import (
    DuplicateData,
    FindingData,
    SymbolEntry,
    UndefinedSymbolsData,
    XSchedLibrary,
)
from xsched_ops.doctor.findings import Finding, fail, ok, warn
from xsched_ops.doctor.summary import judge
from xsched_ops.sandbox import scenarios


def test_every_check_id_is_declared_by_exactly_one_registered_check() -> None:
    declared = Counter(check_id for check in registry.registered_checks() for check_id in check.finding_ids)
    assert set(declared) == set(CheckId), set(CheckId) ^ set(declared)
    assert all(count == 1 for count in declared.values()), declared
    # Every check registers under its own id once.
    own = [check.id for check in registry.registered_checks()]
    assert len(own) == len(set(own))


def test_the_scenarios_expect_only_ids_some_check_emits() -> None:
    declared = {check_id for check in registry.registered_checks() for check_id in check.finding_ids}
    expected = {finding.check for scenario in scenarios.SCENARIOS.values() for finding in scenario.expected_findings()}
    assert expected <= declared, expected - declared


def test_a_finding_under_an_undeclared_id_is_a_crash_of_its_check() -> None:
    def emits_ipc_undeclared(context: object) -> list[Finding]:
        return [ok(CheckId.MPS, "target", "fine"), warn(CheckId.IPC, "xsched", "stale queue")]

    registry.registered_checks()  # the real checks first, so that the test's check is the only one run
    probe = registry.Check(CheckId.MPS, "target", "NVIDIA MPS (test)", emits_ipc_undeclared)
    registry.CHECKS.append(probe)
    try:
        findings = [f for f in registry.run_checks(SimpleNamespace(), only={CheckId.MPS})  # type: ignore[arg-type]
                    if f.title.startswith("NVIDIA MPS (test)") or f.title in ("fine", "stale queue")]
    finally:
        registry.CHECKS.remove(probe)
    crashed = [f for f in findings if f.severity == "crash"]
    assert len(crashed) == 1 and crashed[0].id == CheckId.MPS and "undeclared ids: ipc" in crashed[0].title
    # What the check found is still reported.
    assert {f.title for f in findings} >= {"fine", "stale queue"}


def test_a_check_id_outside_the_enum_is_refused() -> None:
    try:
        Finding(id="gpu-runtime.nvidia", area="gpu", severity="info", title="x")  # type: ignore[arg-type]
    except ValueError:
        return
    raise AssertionError("an id outside CheckId was accepted")


def test_typed_kinds_are_read_by_name_and_written_with_the_keys_set() -> None:
    entry = SymbolEntry(symbol="_ZTIN6xsched3hip10HipCommandE", demangled="typeinfo for xsched::hip::HipCommand",
                        version=None, when="startup", loader_message="symbol lookup error: ...")
    data = UndefinedSymbolsData(symbol=entry.symbol, demangled=entry.demangled, needed_by="/x/lib/libshimhip.so",
                                loaded_provider="/old/lib/libhalhip.so", loaded_provider_reason="ld.so.cache",
                                expected_provider=None, symbols=[entry],
                                xsched_libraries=[XSchedLibrary(library="libhalhip.so", path="/old/lib/libhalhip.so",
                                                                folder="/old/lib", reached_by="ld.so.cache",
                                                                search_path=["/x/lib"], built_for=["/x/lib"])],
                                mixed_builds=True)
    finding = fail(CheckId.SHIM_LOADS, "loader", "t", data=data)
    assert finding.data.loaded_provider == "/old/lib/libhalhip.so"  # by name, for the type checker
    written = json.loads(json.dumps(finding.model_dump()))["data"]
    assert set(written) == {"symbol", "demangled", "needed_by", "loaded_provider", "loaded_provider_reason",
                            "expected_provider", "symbols", "xsched_libraries", "mixed_builds"}
    assert written["expected_provider"] is None  # set to null by its maker: written
    assert written["symbols"][0]["demangled"] == "typeinfo for xsched::hip::HipCommand"
    assert written["xsched_libraries"][0]["built_for"] == ["/x/lib"]
    # Read by key too, as the JSON reads.
    assert finding.data["loaded_provider"] == written["loaded_provider"] and "symbols" in finding.data


def test_judging_for_the_simulated_backend_keeps_the_kind() -> None:
    duplicate = fail(CheckId.DUPLICATES, "loader", "stale", data=DuplicateData(copies=["/a", "/b"]))
    gpu = fail(CheckId.GPU, "gpu", "no GPU", path="/dev/kfd")
    judged_duplicate, judged_gpu = judge([duplicate, gpu], "sim")
    assert isinstance(judged_duplicate.data, DuplicateData) and judged_duplicate.severity == "fail"
    assert type(judged_gpu.data) is FindingData and judged_gpu.severity == "warn"
    assert judged_gpu.model_dump()["data"] == {"path": "/dev/kfd", "severity_for_gpu_backends": "fail",
                                               "judged_for_backend": "sim"}
