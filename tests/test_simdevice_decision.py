"""The simulated device's copy of XSched's scheduler rule agrees with the host package's.

The workload cannot import xsched_ops, so xsched_decision.effective_scheduler (the simulated
device's decision) mirrors xsched_ops.xsched.settings.effective_scheduler; this table keeps the
two together.
"""

from __future__ import annotations

import sys

import pytest

from xsched_ops.workload import SOURCE_DIR
from xsched_ops.xsched.settings import POLICIES, effective_scheduler

sys.path.insert(0, str(SOURCE_DIR.parent))
from xsched_ops_workload import xsched_decision  # noqa: E402

ENVIRONMENTS = [
    {},
    {"XSCHED_SCHEDULER": "GLB"},
    {"XSCHED_SCHEDULER": "LCL"},
    {"XSCHED_SCHEDULER": "APP"},
    {"XSCHED_SCHEDULER": "glb"},
    {"XSCHED_SCHEDULER": ""},
    {"XSCHED_SCHEDULER": "XYZ"},
    {"XSCHED_POLICY": "GBL"},
    {"XSCHED_POLICY": "GBL", "XSCHED_SCHEDULER": "GLB"},
    {"XSCHED_POLICY": "GBL", "XSCHED_SCHEDULER": "LCL"},
    {"XSCHED_POLICY": "hpf", "XSCHED_SCHEDULER": "LCL"},
    {"XSCHED_POLICY": "", "XSCHED_SCHEDULER": "GLB"},
    {"XSCHED_POLICY": "HPF"},
    {"XSCHED_POLICY": "HPF", "XSCHED_SCHEDULER": "GLB"},
    {"XSCHED_POLICY": "HPF", "XSCHED_SCHEDULER": "APP"},
    {"XSCHED_POLICY": "PUP", "XSCHED_SCHEDULER": "LCL"},
    *({"XSCHED_POLICY": policy} for policy in POLICIES),
]


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=lambda env: ",".join(f"{k}={v}" for k, v in env.items()) or "unset")
def test_the_copy_agrees_with_xsched_settings(env):
    host = effective_scheduler(env)
    assert xsched_decision.effective_scheduler(env) == (host.kind, host.reason)


def test_the_policy_lists_agree():
    assert xsched_decision.KNOWN_POLICIES == POLICIES


def test_the_table_covers_every_kind():
    assert {effective_scheduler(env).kind for env in ENVIRONMENTS} == {"local", "global", "app"}
