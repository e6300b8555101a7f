"""Resource requests, detection and the pool that packs trials onto CPUs and GPUs.

A trial asks for ``{"cpu": c, "gpu": g}`` (``tune.with_resources``). The
pool holds the resources of the machine (detected) or those the user
declares, and hands out an :class:`Allocation` per running trial: a CPU
count and GPU ids. Whole-GPU requests take whole free devices; a fractional
request (``"gpu": 0.5``) shares one device with other fractional trials as
long as the fractions on it add up to at most 1.
"""

from __future__ import annotations

import math
import numbers
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any, Mapping

# Environment variables that cap the thread pools of BLAS/OpenMP libraries.
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

_EPS = 1e-9


@dataclass(frozen=True)
class Request:
    """What one trial asks for: CPUs (may be fractional or 0) and GPUs."""

    cpu: float = 1.0
    gpu: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"cpu": self.cpu, "gpu": self.gpu}


def parse_request(resources: Any) -> Request:
    """Validate a resource dict such as ``{"cpu": 2, "gpu": 0.5}``.

    Keys are case-insensitive (``"CPU"`` works too); a missing ``cpu``
    means 1 and a missing ``gpu`` 0, as in Ray Tune.
    """
    if isinstance(resources, Request):
        return resources
    if not isinstance(resources, Mapping):
        raise TypeError(
            f"resources must be a dict like {{'cpu': 1, 'gpu': 0}}, got {resources!r} "
            f"of type {type(resources).__name__}"
        )
    values: dict[str, float] = {}
    for key, value in resources.items():
        name = str(key).lower()
        if name not in ("cpu", "gpu"):
            raise ValueError(
                f"unknown resource {key!r} in {dict(resources)!r}; fastasha schedules "
                "'cpu' and 'gpu' only"
            )
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise TypeError(f"resource {key!r} must be a finite number, got {value!r}")
        if value < 0:
            raise ValueError(f"resource {key!r} must not be negative, got {value!r}")
        values[name] = float(value)
    gpu = values.get("gpu", 0.0)
    if gpu > 1 and not float(gpu).is_integer():
        raise ValueError(
            f"a fractional GPU request must be at most 1, got gpu={gpu!r}; ask for a whole "
            "number of GPUs or a fraction of one"
        )
    return Request(cpu=values.get("cpu", 1.0), gpu=gpu)


def detect_cpus() -> int:
    """CPUs this process may run on (CPU affinity and cgroup quota respected)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        from joblib import cpu_count

        n = min(n, cpu_count())
    except Exception:  # pragma: no cover - joblib's probe is best effort
        pass
    return max(1, n)


def detect_gpus() -> list[str]:
    """GPU ids visible to this process.

    ``CUDA_VISIBLE_DEVICES`` when it is set (an empty value means none);
    otherwise the devices ``nvidia-smi`` lists; otherwise none.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [x.strip() for x in visible.split(",") if x.strip()]
        # "-1" or any negative id hides every device from CUDA
        out = []
        for x in ids:
            if x.lstrip("-").isdigit() and int(x) < 0:
                break
            out.append(x)
        return out
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        proc = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if proc.returncode != 0:
        return []
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


def parse_available(resources: Any | None) -> tuple[float, list[str]]:
    """The resources a Tuner may use: detected, or declared by the user.

    ``resources`` is ``None`` (detect) or a dict with ``"cpu"`` (a number)
    and ``"gpu"`` (a count, or a list of device ids). A key left out is
    detected.
    """
    if resources is None:
        return float(detect_cpus()), detect_gpus()
    if not isinstance(resources, Mapping):
        raise TypeError(
            f"resources must be a dict like {{'cpu': 16, 'gpu': 4}}, got {resources!r}"
        )
    unknown = [k for k in resources if str(k).lower() not in ("cpu", "gpu")]
    if unknown:
        raise ValueError(f"unknown resource(s) {unknown!r}; declare 'cpu' and 'gpu' only")
    lowered = {str(k).lower(): v for k, v in resources.items()}
    cpu = lowered.get("cpu")
    if cpu is None:
        cpu = float(detect_cpus())
    elif isinstance(cpu, bool) or not isinstance(cpu, numbers.Real) or not cpu > 0:
        raise ValueError(f"resources['cpu'] must be a number greater than 0, got {cpu!r}")
    gpu = lowered.get("gpu")
    if gpu is None:
        gpu_ids = detect_gpus()
    elif isinstance(gpu, (list, tuple)):
        gpu_ids = [str(g) for g in gpu]
        if len(set(gpu_ids)) != len(gpu_ids):
            raise ValueError(f"resources['gpu'] lists a device twice: {list(gpu)!r}")
    elif isinstance(gpu, numbers.Integral) and not isinstance(gpu, bool) and gpu >= 0:
        gpu_ids = [str(i) for i in range(int(gpu))]
    else:
        raise ValueError(
            f"resources['gpu'] must be a whole number of GPUs or a list of device ids, got {gpu!r}"
        )
    return float(cpu), gpu_ids


@dataclass
class Allocation:
    """Resources held by one running trial."""

    cpu: float
    gpu_ids: tuple[str, ...] = ()
    gpu_fraction: float = 0.0          # per device, for fractional requests

    def env(self) -> dict[str, str]:
        """Environment a trial process runs with: visible GPUs and thread caps."""
        threads = str(max(1, int(self.cpu))) if self.cpu >= 1 else "1"
        env = {name: threads for name in THREAD_ENV_VARS}
        env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpu_ids)
        return env


@dataclass
class ResourcePool:
    """CPUs and GPUs shared by the running trials.

    Parameters
    ----------
    cpu : float
        Total CPUs.
    gpu_ids : list of str
        Device ids of the GPUs.
    """

    cpu: float
    gpu_ids: list[str]
    _free_cpu: float = field(init=False)
    _gpu_free: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        self._free_cpu = float(self.cpu)
        self._gpu_free = {g: 1.0 for g in self.gpu_ids}

    def check_fits(self, request: Request) -> None:
        """``ValueError`` if ``request`` could never run, even on an idle pool."""
        problems = []
        if request.cpu > self.cpu + _EPS:
            problems.append(f"{request.cpu:g} CPU(s) but only {self.cpu:g} are available")
        if request.gpu > len(self.gpu_ids) + _EPS:
            problems.append(f"{request.gpu:g} GPU(s) but only {len(self.gpu_ids)} are available")
        if problems:
            raise ValueError(
                "a trial asks for " + " and ".join(problems) + "; lower the request in "
                "tune.with_resources(...) or declare more with Tuner(..., resources={'cpu': "
                "..., 'gpu': ...})"
            )

    def fits_count(self, request: Request) -> int:
        """How many trials with ``request`` fit on the idle pool at once."""
        counts = []
        if request.cpu > 0:
            counts.append(int(math.floor(self.cpu / request.cpu + _EPS)))
        if request.gpu > 0:
            if request.gpu < 1:
                per_device = int(math.floor(1.0 / request.gpu + _EPS))
                counts.append(per_device * len(self.gpu_ids))
            else:
                counts.append(len(self.gpu_ids) // int(request.gpu))
        return min(counts) if counts else max(1, int(self.cpu))

    def acquire(self, request: Request, prefer: tuple[str, ...] = ()) -> Allocation | None:
        """Reserve ``request``; ``None`` if it does not fit now.

        GPU ids in ``prefer`` (those the slot's process already sees) are
        taken first, so a slot keeps its devices from trial to trial.
        """
        if request.cpu > self._free_cpu + _EPS:
            return None
        gpu_ids: tuple[str, ...] = ()
        fraction = 0.0
        if request.gpu > 0:
            order = [g for g in prefer if g in self._gpu_free]
            order += [g for g in self.gpu_ids if g not in order]
            if request.gpu < 1:
                # the fullest device that still has room keeps whole devices free
                candidates = [g for g in order if self._gpu_free[g] + _EPS >= request.gpu]
                if not candidates:
                    return None
                preferred = [g for g in candidates if g in prefer]
                pick = preferred[0] if preferred else min(candidates, key=lambda g: self._gpu_free[g])
                gpu_ids = (pick,)
                fraction = request.gpu
            else:
                whole = [g for g in order if self._gpu_free[g] >= 1.0 - _EPS]
                need = int(request.gpu)
                if len(whole) < need:
                    return None
                gpu_ids = tuple(whole[:need])
                fraction = 1.0
        self._free_cpu -= request.cpu
        for g in gpu_ids:
            self._gpu_free[g] -= fraction
        return Allocation(cpu=request.cpu, gpu_ids=gpu_ids, gpu_fraction=fraction)

    def release(self, allocation: Allocation) -> None:
        """Give back what :meth:`acquire` reserved."""
        self._free_cpu = min(self.cpu, self._free_cpu + allocation.cpu)
        for g in allocation.gpu_ids:
            self._gpu_free[g] = min(1.0, self._gpu_free[g] + allocation.gpu_fraction)

    @property
    def free_cpu(self) -> float:
        return self._free_cpu

    def free_gpu(self) -> dict[str, float]:
        """Unreserved fraction of each device."""
        return dict(self._gpu_free)
