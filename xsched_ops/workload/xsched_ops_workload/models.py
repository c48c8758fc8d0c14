"""What a role runs: a model on the simulated device, or a torch model on an explicit stream."""

from __future__ import annotations

import importlib.util
import os
import threading

from xsched_ops_workload.errors import WorkloadError
from xsched_ops_workload.spec import RoleSpec, RunSpec


class SimModel:
    """One inference = the kernel sequence of the profile's table, on this role's device queue."""

    def __init__(self, queue, kernels_s: list[float]) -> None:
        self.queue = queue
        self.kernels_s = kernels_s
        self.device = "sim"

    def run_once(self) -> None:
        self.queue.run(self.kernels_s)

    def start_info(self) -> dict:
        return {"sim": dict(self.queue.decision), "kernels": len(self.kernels_s),
                "inference_ms": round(sum(self.kernels_s) * 1000.0, 4)}


class SharedResources:
    """Per-process things roles may share: the sim queue or the torch stream of `shared-stream`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.shared_sim_queue = None
        self.shared_torch_stream = None


def stream_priority_for(spec: RunSpec, role: RoleSpec) -> int:
    """Native stream priority wanted by the role: only `priority-streams` raises the open-loop role."""
    return 1 if spec.placement == "priority-streams" and role.kind == "open-loop" else 0


def build_sim_model(spec: RunSpec, role: RoleSpec, shared: SharedResources) -> SimModel:
    from xsched_ops_workload.simdevice import SimQueueClient

    assert spec.sim is not None
    kernels_s = spec.sim.models[role.model].kernel_durations_s(role.batch)
    if spec.placement == "shared-stream":
        with shared.lock:
            if shared.shared_sim_queue is None:
                shared.shared_sim_queue = SimQueueClient(spec.sim.socket, "shared-stream")
            queue = shared.shared_sim_queue
    else:
        queue = SimQueueClient(spec.sim.socket, role.name, stream_priority_for(spec, role))
    return SimModel(queue, kernels_s)


def _load_user_factory(model: str):
    # file:PATH:FACTORY, PATH may itself hold ':' so split from the right.
    body = model[len("file:"):]
    path, sep, factory_name = body.rpartition(":")
    if not sep or not path or not factory_name:
        raise WorkloadError(f"model {model!r}: expected file:PATH:FACTORY")
    if not os.path.isfile(path):
        raise WorkloadError(f"model {model!r}: file {path} does not exist in the target")
    module_name = f"xsched_ops_user_model_{abs(hash(path))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise WorkloadError(f"model {model!r}: cannot load {path} as Python")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:
        raise WorkloadError(f"model {model!r}: importing {path} failed: {type(err).__name__}: {err}") from err
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise WorkloadError(f"model {model!r}: {path} has no callable {factory_name}")
    return factory, getattr(module, "INPUT_SHAPE", None)


def _torchvision_factory(model: str):
    name = model[len("torchvision:"):]
    try:
        import torchvision.models as tv_models
    except ImportError as err:
        raise WorkloadError(
            f"model {model!r} needs torchvision, which this python cannot import ({err}); install torchvision "
            "matching torch in the target, or give your own model as file:PATH:FACTORY"
        ) from err
    factory = getattr(tv_models, name, None)
    if not callable(factory):
        raise WorkloadError(f"model {model!r}: torchvision.models has no {name}")
    return (lambda: factory(weights=None)), None


class TorchModel:
    """A torch module in eval mode, its input on the device, every kernel on an explicit stream."""

    def __init__(self, spec: RunSpec, role: RoleSpec, shared: SharedResources) -> None:
        try:
            import torch
        except ImportError as err:
            raise WorkloadError(f"backend torch: this python cannot import torch ({err})") from err
        self.torch = torch
        if role.model.startswith("torchvision:"):
            factory, input_shape = _torchvision_factory(role.model)
        elif role.model.startswith("file:"):
            factory, input_shape = _load_user_factory(role.model)
        else:
            raise WorkloadError(f"model {role.model!r}: expected torchvision:NAME or file:PATH:FACTORY")
        device_name = spec.device
        if device_name == "auto":
            device_name = "cuda" if torch.cuda.is_available() else "cpu"
        if device_name.startswith("cuda") and not torch.cuda.is_available():
            raise WorkloadError(f"device {device_name} requested but torch.cuda.is_available() is False")
        self.device = torch.device(device_name)
        self.stream = None
        self.stream_priority = None
        if self.device.type == "cuda":
            if spec.placement == "shared-stream":
                with shared.lock:
                    if shared.shared_torch_stream is None:
                        shared.shared_torch_stream = torch.cuda.Stream(device=self.device)
                    self.stream = shared.shared_torch_stream
            else:
                # Lower numbers are higher priorities in CUDA/HIP; greatest priority is range()[1].
                wanted = stream_priority_for(spec, role)
                priority = torch.cuda.Stream.priority_range()[1] if wanted else 0
                self.stream = torch.cuda.Stream(device=self.device, priority=priority)
            self.stream_priority = self.stream.priority
        shape = tuple(input_shape) if input_shape else (3, role.image_size, role.image_size)
        try:
            module = factory()
        except Exception as err:
            raise WorkloadError(f"model {role.model!r}: the factory failed: {type(err).__name__}: {err}") from err
        if not isinstance(module, torch.nn.Module):
            raise WorkloadError(f"model {role.model!r}: the factory returned {type(module).__name__}, not a torch.nn.Module")
        with self._stream_context():
            self.module = module.to(self.device).eval()
            self.inputs = torch.randn((role.batch, *shape), device=self.device)
        if self.stream is not None:
            self.stream.synchronize()

    def _stream_context(self):
        import contextlib

        if self.stream is None:
            return contextlib.nullcontext()
        return self.torch.cuda.stream(self.stream)

    def run_once(self) -> None:
        with self.torch.inference_mode(), self._stream_context():
            self.module(self.inputs)
        if self.stream is not None:
            self.stream.synchronize()

    def start_info(self) -> dict:
        torch = self.torch
        device_label = str(self.device)
        info = {
            "version": torch.__version__,
            "cuda": getattr(torch.version, "cuda", None),
            "hip": getattr(torch.version, "hip", None),
            "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu",
            "stream": "explicit" if self.stream is not None else "none (cpu)",
            "stream_priority": self.stream_priority,
        }
        return {"torch": info, "device_label": device_label}


def build_model(spec: RunSpec, role: RoleSpec, shared: SharedResources):
    if spec.backend == "sim":
        return build_sim_model(spec, role, shared)
    return TorchModel(spec, role, shared)
