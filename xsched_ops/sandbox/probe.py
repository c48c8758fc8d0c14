"""Ground truth: what the sandbox's real dynamic loader does with a scenario.

Runs python3 in the container with the scenario's probe environment (the container's Env, plus
``LD_PRELOAD`` of the shim unless the scenario keeps its own, or the lib folder first on
``LD_LIBRARY_PATH`` for the libpath route) and the scenario's probe program, and reports whether it ran and
whether the shim was mapped, to compare with the scenario's declared ``LoaderOutcome``.
"""

from __future__ import annotations

from dataclasses import dataclass

from xsched_ops.sandbox.scenarios import PROBE_MARKER, LoaderOutcome, Scenario
from xsched_ops.target.base import Target


@dataclass(frozen=True)
class ProbeResult:
    exit_code: int
    stdout: str
    stderr: str
    shim: str  # the path of the scenario's shim in the container

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and PROBE_MARKER in self.stdout

    @property
    def shim_mapped(self) -> bool:
        return any(line.endswith(" " + self.shim) for line in self.stdout.splitlines())

    def mismatches(self, outcome: LoaderOutcome) -> list[str]:
        """How this result differs from the declared outcome (empty when it agrees)."""
        problems = []
        if self.succeeded != outcome.succeeds:
            problems.append(f"python3 {'ran' if self.succeeded else 'failed'} (exit {self.exit_code}), "
                            f"expected it to {'run' if outcome.succeeds else 'fail'}")
        for text in outcome.stderr_contains:
            if text not in self.stderr:
                problems.append(f"stderr lacks {text!r}")
        if self.succeeded and self.shim_mapped != outcome.shim_mapped:
            problems.append(f"shim {'mapped' if self.shim_mapped else 'not mapped'}, expected "
                            f"{'mapped' if outcome.shim_mapped else 'not mapped'}")
        return problems


def run_loader_probe(target: Target, scenario: Scenario, timeout: float = 60) -> ProbeResult:
    environment = scenario.probe_env(target.environment())
    result = target.exec(list(scenario.probe_argv), env=environment, timeout=timeout)
    return ProbeResult(exit_code=result.exit_code, stdout=result.stdout, stderr=result.stderr, shim=scenario.shim)
