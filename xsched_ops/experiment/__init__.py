"""The experiment: modes, environments per role, the xserver's lifecycle, live progress,
collection of results and cleanup inside the target.

``run_experiment`` runs the trials of one ``xsched-ops run`` (modes interleaved over repeats)
and leaves ``results/<run-id>/`` finalized; ``fix_and_rerun`` is the one-command repair flow.
"""

from xsched_ops.experiment.modes import DEFAULT_MODES, ModePlan, mode_plan, trial_order
from xsched_ops.experiment.options import ExperimentOptions, RunOutcome
from xsched_ops.experiment.orchestrator import run_experiment

__all__ = ["DEFAULT_MODES", "ExperimentOptions", "ModePlan", "RunOutcome", "mode_plan", "run_experiment",
           "trial_order"]
