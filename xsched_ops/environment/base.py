"""Where every xsched-ops process environment starts: the base environment of a target.

The environment stored by ``doctor --fix`` when there is one (and it is not ignored), else the
target's configured environment. The doctor, ``env`` and runs all start from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from xsched_ops.environment import stored_env
from xsched_ops.environment.stored_env import StoredEnvironment
from xsched_ops.target.base import Target
from xsched_ops.target.fs import TargetFS

SOURCE_STORED = "stored by doctor --fix"
SOURCE_CONFIGURED = "the target's configured environment"


@dataclass(frozen=True)
class BaseEnvironment:
    env: dict[str, str]
    source: str  # SOURCE_STORED or SOURCE_CONFIGURED
    stored_document: StoredEnvironment | None = None

    @property
    def stored(self) -> bool:
        return self.source == SOURCE_STORED


def choose_base(stored: StoredEnvironment | None, configured: Callable[[], Mapping[str, str]]) -> BaseEnvironment:
    """The stored environment when there is one, else the configured one (asked for only then)."""
    if stored is not None:
        return BaseEnvironment(dict(stored.env), SOURCE_STORED, stored)
    return BaseEnvironment(dict(configured()), SOURCE_CONFIGURED)


def base_environment(target: Target, use_stored: bool = True, fs: TargetFS | None = None) -> BaseEnvironment:
    """The base environment of ``target``; ``fs``: its files from the host, when already at hand."""
    stored = stored_env.load(target, fs) if use_stored else None
    return choose_base(stored, target.environment)
