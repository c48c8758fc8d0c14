"""Build the workload spec (FORMAT.md) from a validated profile: one source of the mapping."""

from __future__ import annotations

from typing import Literal

from xsched_ops.errors import ProfileError
from xsched_ops.profiles import Profile

ROLE_KINDS = {"high": "open-loop", "low": "closed-loop"}


def build_spec(
    profile: Profile,
    *,
    backend: Literal["sim", "torch"],
    output_dir: str,
    run_id: str,
    roles: tuple[str, ...] = ("high", "low"),
    placement: str | None = None,
    role_env: dict[str, dict[str, str]] | None = None,
    device: str = "auto",
    model_paths: dict[str, str] | None = None,
    stdout_events: Literal["progress", "all"] = "progress",
    sim_socket: str | None = None,
    runtime: dict[str, str] | None = None,
) -> dict:
    """The JSON-ready spec of one run.

    ``roles``: ``("high",)`` for standalone. ``role_env``: variables per role (the XSched
    environment computed for the target). ``model_paths``: where a ``file:`` model's file lies in
    the target, by role (the host copies it there), replacing the host path in the model string.
    ``runtime``: ``{"library", "init_symbol", "file_prefix"}``: the runtime entry point every role calls
    first (FORMAT.md).
    """
    role_env = role_env or {}
    model_paths = model_paths or {}
    spec_roles = []
    for name in roles:
        if name not in ROLE_KINDS:
            raise ProfileError(f"profile {profile.name}: no role {name!r}", "roles are high and low")
        role = getattr(profile, name)
        model = role.model
        if model.startswith("file:") and name in model_paths:
            factory = model.rpartition(":")[2]
            model = f"file:{model_paths[name]}:{factory}"
        spec_roles.append({"name": name, "kind": ROLE_KINDS[name], "model": model, "batch": role.batch,
                           "image_size": role.image_size, "env": dict(role_env.get(name, {}))})
        if runtime is not None:
            spec_roles[-1]["runtime"] = dict(runtime)
    spec: dict = {
        "format": 1,
        "run_id": run_id,
        "backend": backend,
        "device": device,
        "placement": placement or profile.placement,
        "duration_s": profile.duration_s,
        "warmup_s": profile.warmup_s,
        "warmup_iterations": profile.warmup_iterations,
        "drain_s": profile.drain_s,
        "output_dir": output_dir,
        "stdout_events": stdout_events,
        "arrival": {"process": profile.arrival.process, "rate": profile.high.rate,
                    "jitter": profile.arrival.jitter, "seed": profile.arrival.seed},
        "roles": spec_roles,
    }
    if backend == "sim":
        models = {}
        for entry in spec_roles:
            kernels = profile.sim_kernels(getattr(profile, entry["name"]).model)
            models[entry["model"]] = kernels.model_dump()
        spec["sim"] = {"socket": sim_socket, "xserver_host": "127.0.0.1",
                       "xserver_port": profile.xsched.xserver_port, "models": models}
    return spec
