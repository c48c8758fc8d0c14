"""Results: the on-disk records of a run, their analysis, validity, storage and comparison.

The orchestrator fills ``TrialMeta`` and ``RunMeta`` and writes them with ``write_trial_meta`` and
``write_run_meta``; ``finalize_run`` analyses every trial and writes ``result.json``.
"""

from xsched_ops.results.analysis import analyze_trial, summarize_mode
from xsched_ops.results.compare import (
    SEED_TIERS,
    Comparison,
    TierCriteria,
    TierThreshold,
    compare,
    tiers_from_profile,
)
from xsched_ops.results.models import (
    SCHEMA_VERSION,
    Finding,
    RunMeta,
    RunResult,
    TrialAnalysis,
    TrialMeta,
    XSchedFacts,
)
from xsched_ops.results.store import (
    DEFAULT_RESULTS_DIR,
    RunListing,
    analyze_run,
    finalize_run,
    latest_valid_run,
    list_runs,
    load_run,
    new_run_id,
    resolve_run_dir,
    run_dir_for,
    trial_dir_for,
    write_run_meta,
    write_trial_meta,
)

__all__ = [
    "DEFAULT_RESULTS_DIR", "SCHEMA_VERSION", "SEED_TIERS", "Comparison", "Finding", "RunListing", "RunMeta",
    "RunResult", "TierCriteria", "TierThreshold", "TrialAnalysis", "TrialMeta", "XSchedFacts", "analyze_run",
    "analyze_trial", "compare", "finalize_run", "latest_valid_run", "list_runs", "load_run", "new_run_id",
    "resolve_run_dir", "run_dir_for", "summarize_mode", "tiers_from_profile", "trial_dir_for",
    "write_run_meta", "write_trial_meta",
]
