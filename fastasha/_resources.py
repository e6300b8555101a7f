"""Resource requests, detection and the pool that packs trials onto CPUs, GPUs and memory.

A trial asks for ``{"cpu": c, "gpu": g, "memory": m}`` or for a Ray
:class:`PlacementGroupFactory` (``tune.with_resources``); either becomes a
:class:`Request`, the sum of what it asks for. The pool holds the
resources of the machine (detected; on joblib's Dask backend, those of the
cluster's workers) or those the user declares, and hands
out an :class:`Allocation` per running trial: a CPU count, GPU ids and
bytes of memory. Whole-GPU requests take whole free devices; a fractional
request (``"gpu": 0.5``) shares one device with other fractional trials as
long as the fractions on it add up to at most 1. Memory is bookkeeping
only, as Ray's ``memory`` resource is: it decides how many trials run at
once, and no limit is put on a trial's process.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any, Mapping

# Environment variables that cap the thread pools of BLAS/OpenMP libraries.
# Ray Tune sets it, in the driver and in every trial, to the driver's working directory
ORIG_WORKING_DIR_ENV = "TUNE_ORIG_WORKING_DIR"
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

# Ray's placement strategies (ray.util.placement_group); on one machine they all mean the same.
PLACEMENT_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")
# The arguments of Ray's placement_group() after bundles and strategy, in order: a
# PlacementGroupFactory accepts them (and compares by them) as Ray's does, and ignores them.
_PLACEMENT_OPTIONS = ("name", "lifetime", "_soft_target_node_id", "bundle_label_selector",
                      "topology_strategy")
# Ray's spelling of each resource fastasha schedules, by its lower-case name.
_RAY_NAMES = {"cpu": "CPU", "gpu": "GPU", "memory": "memory"}

_EPS = 1e-9


@dataclass(frozen=True)
class Request:
    """What one trial asks for: CPUs (may be fractional or 0), GPUs and bytes of memory.

    ``placement`` is the :class:`PlacementGroupFactory` the request was
    made from, if any (what ``get_trial_resources()`` gives back); two
    requests that ask for the same amounts are equal whatever their bundles.
    """

    cpu: float = 1.0
    gpu: float = 0.0
    memory: float = 0.0
    placement: PlacementGroupFactory | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, float]:
        """``{"cpu": c, "gpu": g}``, with ``"memory"`` too when the request has some."""
        if self.memory:
            return {"cpu": self.cpu, "gpu": self.gpu, "memory": self.memory}
        return {"cpu": self.cpu, "gpu": self.gpu}


def _amounts(resources: Mapping, where: str) -> dict[str, float]:
    """The amounts in a request or bundle, by lower-case name; raises on a bad one."""
    values: dict[str, float] = {}
    for key, value in resources.items():
        name = str(key).lower()
        if name not in _RAY_NAMES:
            raise ValueError(
                f"unknown resource {key!r} in {where} {dict(resources)!r}; fastasha schedules "
                "'cpu', 'gpu' and 'memory' (bytes) only"
            )
        if name in values:
            raise ValueError(f"resource {name!r} is given twice in {where} {dict(resources)!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise TypeError(f"resource {key!r} must be a finite number, got {value!r}")
        if value < 0:
            raise ValueError(f"resource {key!r} must not be negative, got {value!r}")
        values[name] = float(value)
    return values


def _check_gpu(gpu: float, source: str) -> None:
    if gpu > 1 and not float(gpu).is_integer():
        raise ValueError(
            f"a fractional GPU request must be at most 1, got gpu={gpu!r}{source}; ask for a "
            "whole number of GPUs or a fraction of one"
        )


def _whole_if_near(value: float) -> float:
    """``value``, or the whole number it differs from by rounding errors only."""
    whole = round(value)
    return float(whole) if abs(value - whole) <= _EPS * max(1.0, abs(value)) else value


def parse_request(resources: Any) -> Request:
    """Validate a resource request: a dict such as ``{"cpu": 2, "gpu": 0.5}``, or a PlacementGroupFactory.

    In a dict, keys are case-insensitive (``"CPU"`` works too); a missing
    ``cpu`` means 1 and a missing ``gpu`` or ``memory`` 0. A
    :class:`PlacementGroupFactory` asks for the sum of its bundles (a CPU or
    GPU sum within rounding of a whole number, such as ten bundles of 0.2
    GPU, asks for that whole number).
    """
    if isinstance(resources, Request):
        return resources
    if isinstance(resources, PlacementGroupFactory):
        total = resources.required_resources
        # a sum of fractions is a whole number only up to rounding (0.2 * 10 is
        # 1.9999999999999998): taken as the whole number it stands for
        gpu = _whole_if_near(total.get("GPU", 0.0))
        _check_gpu(gpu, " (the sum of the bundles, which one trial process gets)")
        return Request(cpu=_whole_if_near(total.get("CPU", 0.0)), gpu=gpu,
                       memory=total.get("memory", 0.0), placement=resources)
    if not isinstance(resources, Mapping):
        raise TypeError(
            f"resources must be a dict like {{'cpu': 1, 'gpu': 0}} or a "
            f"tune.PlacementGroupFactory, got {resources!r} of type {type(resources).__name__}"
        )
    values = _amounts(resources, "the request")
    gpu = values.get("gpu", 0.0)
    _check_gpu(gpu, "")
    return Request(cpu=values.get("cpu", 1.0), gpu=gpu, memory=values.get("memory", 0.0))


class PlacementGroupFactory:
    """A trial's resource request as bundles (Ray Tune's ``tune.PlacementGroupFactory``).

    Pass it to ``tune.with_resources`` (or return it from the resource
    function given there). fastasha runs a trial in one process on one
    machine, so the trial is given the sum of its bundles: ``[{"CPU": 1,
    "GPU": 1}, {"CPU": 2}, {"CPU": 2}]`` asks for 5 CPUs and 1 GPU at once.

    Parameters
    ----------
    bundles : list of dict
        What each part of the trial needs, keyed by ``"CPU"``, ``"GPU"`` and
        ``"memory"`` (bytes); ``"cpu"`` and ``"gpu"`` work too. A key left
        out of a bundle means 0, and zero amounts are dropped, as in Ray. A
        first bundle that asks for nothing is dropped too
        (``head_bundle_is_empty``).
    strategy : {"PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"}, default="PACK"
        Ray's placement strategy. On one machine every strategy places the
        trial the same way: it is checked, kept, and has no effect.
    *args, **kwargs
        The further arguments of Ray's ``placement_group()`` (``name``,
        ``lifetime``, ``_soft_target_node_id``, ``bundle_label_selector``,
        ``topology_strategy``): accepted and compared as in Ray, and
        otherwise ignored.

    Attributes
    ----------
    bundles : list of dict
        A copy of the bundles, in Ray's spelling (``"CPU"``, ``"GPU"``,
        ``"memory"``), amounts as floats.
    strategy : str
    head_bundle_is_empty : bool
        Whether the first bundle given asked for nothing (it is then left out
        of ``bundles``).
    required_resources : dict
        The sum over the bundles, e.g. ``{"CPU": 5.0, "GPU": 1.0}``.
    head_cpus : float
        The CPUs of the first bundle (0 when it was empty).

    Raises
    ------
    ValueError
        For no bundles, a single bundle that asks for nothing, a resource other
        than CPU, GPU and memory, a negative amount, or an unknown strategy.
    TypeError
        For bundles that are not a list of dicts, an amount that is not a
        number, or an argument Ray's ``placement_group()`` does not take.

    Notes
    -----
    Where fastasha differs from Ray:

    - The bundles are summed: a trial is one process, which gets every CPU,
      GPU and byte of memory of its bundles. A GPU sum above 1 must be a
      whole number (``[{"GPU": 0.5}, {"GPU": 1}]`` cannot run).
    - Custom resource names (Ray's ``{"custom_resource": 2}``) are refused:
      fastasha schedules CPUs, GPUs and memory only.
    - The strategy and the strategy names are checked when the object is
      made (Ray checks them only when it creates the placement group).
    - Keys are written in Ray's spelling: ``{"cpu": 1}`` becomes
      ``{"CPU": 1.0}`` (for Ray, ``"cpu"`` would be a custom resource).
    - There is no ``to_placement_group()``: no Ray placement group is made.
    - The ``repr`` is a call that makes an equal object.

    Examples
    --------
    >>> from fastasha import tune
    >>> pgf = tune.PlacementGroupFactory([{"CPU": 1, "GPU": 0.5}, {"CPU": 2}])
    >>> pgf.required_resources
    {'CPU': 3.0, 'GPU': 0.5}
    >>> pgf
    PlacementGroupFactory([{'CPU': 1.0, 'GPU': 0.5}, {'CPU': 2.0}], strategy='PACK')
    >>> tune.PlacementGroupFactory([{}, {"CPU": 2}]).head_bundle_is_empty
    True
    """

    def __init__(self, bundles: list[dict[str, float]], strategy: str = "PACK",
                 *args: Any, **kwargs: Any) -> None:
        if isinstance(bundles, (str, bytes, Mapping)) or not isinstance(bundles, (list, tuple)):
            raise TypeError(
                f"bundles must be a list of dicts like [{{'CPU': 1, 'GPU': 0.5}}], got "
                f"{bundles!r} of type {type(bundles).__name__}"
            )
        if not bundles:
            raise ValueError(
                "a PlacementGroupFactory needs at least one bundle, got []; pass for example "
                "[{'CPU': 1}]"
            )
        parsed = []
        for i, bundle in enumerate(bundles):
            if not isinstance(bundle, Mapping):
                raise TypeError(
                    f"bundle {i} must be a dict like {{'CPU': 1, 'GPU': 0.5}}, got {bundle!r} "
                    f"of type {type(bundle).__name__}"
                )
            amounts = _amounts(bundle, f"bundle {i}")
            parsed.append({_RAY_NAMES[name]: value for name, value in amounts.items() if value})
        head_empty = not parsed[0]
        if head_empty:
            parsed.pop(0)
            if not parsed:
                raise ValueError(
                    f"a PlacementGroupFactory whose only bundle asks for nothing ({bundles!r}) "
                    "is refused, as in Ray; ask for something, for example [{'CPU': 1}]"
                )
        if strategy not in PLACEMENT_STRATEGIES:
            raise ValueError(
                f"strategy must be one of {', '.join(map(repr, PLACEMENT_STRATEGIES))}, got "
                f"{strategy!r} (on one machine they all place a trial the same way)"
            )
        if len(args) > len(_PLACEMENT_OPTIONS):
            raise TypeError(
                f"PlacementGroupFactory takes at most {len(_PLACEMENT_OPTIONS) + 2} positional "
                f"arguments (bundles, strategy, {', '.join(_PLACEMENT_OPTIONS)}), got "
                f"{len(args) + 2}"
            )
        options = dict(zip(_PLACEMENT_OPTIONS, args))
        for name, value in kwargs.items():
            if name not in _PLACEMENT_OPTIONS:
                raise TypeError(
                    f"PlacementGroupFactory got an unexpected argument {name!r}; Ray's "
                    f"placement_group() takes {', '.join(_PLACEMENT_OPTIONS)}"
                )
            if name in options:
                raise TypeError(f"PlacementGroupFactory got two values for {name!r}")
            options[name] = value
        self._bundles: list[dict[str, float]] = parsed
        self._strategy: str = strategy
        self._head_bundle_is_empty: bool = head_empty
        self._options: dict[str, Any] = options

    @property
    def bundles(self) -> list[dict[str, float]]:
        return [dict(bundle) for bundle in self._bundles]

    @property
    def strategy(self) -> str:
        return self._strategy

    @property
    def head_bundle_is_empty(self) -> bool:
        return self._head_bundle_is_empty

    @property
    def head_cpus(self) -> float:
        if self._head_bundle_is_empty or not self._bundles:
            return 0.0
        return self._bundles[0].get("CPU", 0.0)

    @property
    def required_resources(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for bundle in self._bundles:
            for name, value in bundle.items():
                total[name] = total.get(name, 0.0) + value
        return total

    def _key(self) -> tuple:
        return (self._bundles, self._strategy, self._options, self._head_bundle_is_empty)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PlacementGroupFactory):
            return NotImplemented
        return PlacementGroupFactory._key(self) == PlacementGroupFactory._key(other)

    def __hash__(self) -> int:
        bundles, strategy, options, head_empty = PlacementGroupFactory._key(self)
        return hash((json.dumps(bundles, sort_keys=True), strategy,
                     json.dumps(options, sort_keys=True, default=repr), head_empty))

    def __repr__(self) -> str:
        bundles = ([{}] if self._head_bundle_is_empty else []) + self._bundles
        extra = "".join(f", {name}={value!r}" for name, value in self._options.items())
        return f"PlacementGroupFactory({bundles!r}, strategy={self._strategy!r}{extra})"


class TrialResources(dict, PlacementGroupFactory):
    """What ``tune.get_context().get_trial_resources()`` gives a running trial.

    A :class:`PlacementGroupFactory`, as in Ray: the bundles the trial
    asked for (a dict request ``{"cpu": 2}`` reads as the bundle
    ``[{"CPU": 2.0}]``, as in Ray), with ``required_resources``,
    ``head_cpus`` and the rest. It is also a dict of what the trial holds
    under fastasha's names, ``{"cpu": 2.0, "gpu": 0.0}`` plus ``"memory"``
    when it asked for some, as ``get_trial_resources()`` answered before it
    gave a PlacementGroupFactory. It compares as a PlacementGroupFactory with
    one, and as a dict with anything else.
    """

    @classmethod
    def of(cls, amounts: Mapping[str, float], placement: PlacementGroupFactory | None
           ) -> TrialResources:
        """The resources of a trial that holds ``amounts`` (``Request.as_dict()``)."""
        out = cls(amounts)
        if placement is not None:
            out._bundles = placement.bundles
            out._strategy = placement.strategy
            out._head_bundle_is_empty = placement.head_bundle_is_empty
            out._options = dict(placement._options)
        else:                     # what Ray makes of a dict request: one bundle
            bundle = {_RAY_NAMES[name]: float(value) for name, value in amounts.items()
                      if value and name in _RAY_NAMES}
            out._bundles = [bundle] if bundle else []
            out._strategy = "PACK"
            out._head_bundle_is_empty = not bundle    # asks for nothing (Ray refuses that)
            out._options = {}
        return out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PlacementGroupFactory):
            return PlacementGroupFactory.__eq__(self, other)
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = PlacementGroupFactory.__hash__
    __repr__ = PlacementGroupFactory.__repr__


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


def dask_client(backend: Any = None) -> Any:
    """The ``distributed.Client`` of ``backend`` (by default joblib's active backend), or
    None for any other backend."""
    if backend is None:
        try:
            from joblib.parallel import get_active_backend

            backend, _ = get_active_backend()
        except Exception:   # noqa: BLE001 - no joblib backend to ask: not Dask
            return None
    if type(backend).__name__ != "DaskDistributedBackend":
        return None
    return getattr(backend, "client", None)


def cluster_capacity() -> tuple[float, float] | None:
    """The worker threads and memory of the Dask cluster joblib's active backend uses.

    ``(threads, bytes)``, with ``math.inf`` bytes when a worker has no
    memory limit; None on any other backend, or a cluster without workers.
    The slots of a sweep on Dask run on the cluster's workers, so these,
    not the driver's own CPUs, say how many trials run at once.
    """
    client = dask_client()
    if client is None:
        return None
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    except TypeError:        # distributed before 2025.1 lists every worker anyway
        workers = client.scheduler_info()["workers"]
    except Exception:   # noqa: BLE001 - a cluster we cannot ask: the driver's own
        return None
    threads = sum(int(w.get("nthreads") or 0) for w in workers.values())
    if threads <= 0:
        return None
    limits = [float(w.get("memory_limit") or 0) for w in workers.values()]
    memory = sum(limits) if all(m > 0 for m in limits) else math.inf
    return float(threads), memory


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


def detect_memory(cgroup_root: str = "/sys/fs/cgroup",
                  proc_cgroup: str = "/proc/self/cgroup") -> float:
    """Bytes of memory this process may use.

    The machine's physical memory, or the ``memory.max`` of this process's
    cgroup (v2) or of a cgroup above it, when one is set and smaller.
    ``math.inf`` where the physical memory cannot be read (memory requests
    then always fit).

    Parameters
    ----------
    cgroup_root : str, default="/sys/fs/cgroup"
        Where the cgroup v2 hierarchy is mounted.
    proc_cgroup : str, default="/proc/self/cgroup"
        The file that names this process's cgroup (its ``0::`` line).
    """
    try:
        total = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        total = math.inf
    if not total > 0:
        total = math.inf
    try:
        with open(proc_cgroup, encoding="ascii") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return total
    path = next((line[3:] for line in lines if line.startswith("0::")), None)
    if path is None:            # no cgroup v2
        return total
    parts = [p for p in path.split("/") if p]
    for depth in range(len(parts), -1, -1):      # the process's cgroup, then each parent
        try:
            with open(os.path.join(cgroup_root, *parts[:depth], "memory.max"),
                      encoding="ascii") as f:
                text = f.read().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit() and int(text) > 0:
            total = min(total, float(text))
    return total


def parse_available(resources: Any | None) -> tuple[float, list[str]]:
    """The CPUs and GPUs a Tuner may use: detected, or declared by the user.

    ``resources`` is ``None`` (detect) or a dict with ``"cpu"`` (a number),
    ``"gpu"`` (a count, or a list of device ids) and ``"memory"`` (bytes;
    see :func:`available_memory`). A key left out is detected: CPUs on this
    machine, or on joblib's Dask backend the cluster's worker threads
    (:func:`cluster_capacity`); GPUs on this machine.
    """
    if resources is None:
        return _detected_cpus(), detect_gpus()
    if not isinstance(resources, Mapping):
        raise TypeError(
            f"resources must be a dict like {{'cpu': 16, 'gpu': 4}}, got {resources!r}"
        )
    unknown = [k for k in resources if str(k).lower() not in _RAY_NAMES]
    if unknown:
        raise ValueError(
            f"unknown resource(s) {unknown!r}; declare 'cpu', 'gpu' and 'memory' (bytes) only"
        )
    lowered = {str(k).lower(): v for k, v in resources.items()}
    cpu = lowered.get("cpu")
    if cpu is None:
        cpu = _detected_cpus()
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
    _declared_memory(lowered)         # a bad declaration fails here with the others
    return float(cpu), gpu_ids


def _detected_cpus() -> float:
    """The CPUs a sweep may use where none are declared: the cluster's worker threads
    on joblib's Dask backend, else this machine's."""
    cluster = cluster_capacity()
    return cluster[0] if cluster is not None else float(detect_cpus())


def _declared_memory(lowered: Mapping) -> float | None:
    memory = lowered.get("memory")
    if memory is None:
        return None
    if isinstance(memory, bool) or not isinstance(memory, numbers.Real) or \
            not 0 < memory < math.inf:
        raise ValueError(
            f"resources['memory'] must be a number of bytes greater than 0, got {memory!r}"
        )
    return float(memory)


def available_memory(resources: Any | None) -> float:
    """The bytes of memory a Tuner may hand out: declared, or detected.

    Detected is :func:`detect_memory`, or on joblib's Dask backend the sum
    of the workers' memory limits (:func:`cluster_capacity`).

    ``resources`` is the ``Tuner(..., resources=...)`` dict (or ``None``);
    its ``"memory"`` entry, when given, is a number of bytes greater than 0.
    """
    declared = None
    if isinstance(resources, Mapping):
        declared = _declared_memory({str(k).lower(): v for k, v in resources.items()})
    if declared is not None:
        return declared
    cluster = cluster_capacity()
    return cluster[1] if cluster is not None else detect_memory()


@dataclass
class Allocation:
    """Resources held by one running trial."""

    cpu: float
    gpu_ids: tuple[str, ...] = ()
    gpu_fraction: float = 0.0          # per device, for fractional requests
    memory: float = 0.0                # bytes; bookkeeping only, the env does not change

    def env(self) -> dict[str, str]:
        """Environment a trial process runs with: visible GPUs and thread caps.

        And Ray's ``TUNE_ORIG_WORKING_DIR``, the driver's working directory
        (scripts written for Ray read it to find their files: ``os.chdir(
        os.environ["TUNE_ORIG_WORKING_DIR"])``).
        """
        threads = str(max(1, int(self.cpu))) if self.cpu >= 1 else "1"
        env = {name: threads for name in THREAD_ENV_VARS}
        env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpu_ids)
        env[ORIG_WORKING_DIR_ENV] = os.getcwd()
        return env


@dataclass
class ResourcePool:
    """CPUs, GPUs and memory shared by the running trials.

    Parameters
    ----------
    cpu : float
        Total CPUs.
    gpu_ids : list of str
        Device ids of the GPUs.
    memory : float, default=math.inf
        Total bytes of memory (``math.inf``: memory requests always fit).
    """

    cpu: float
    gpu_ids: list[str]
    memory: float = math.inf
    _free_cpu: float = field(init=False)
    _gpu_free: dict[str, float] = field(init=False)
    _free_memory: float = field(init=False)
    _memory_eps: float = field(init=False)

    def __post_init__(self) -> None:
        self._free_cpu = float(self.cpu)
        self._gpu_free = {g: 1.0 for g in self.gpu_ids}
        self._free_memory = float(self.memory)
        # byte counts near 1e10 carry rounding errors far above _EPS
        self._memory_eps = _EPS * max(1.0, self.memory) if math.isfinite(self.memory) else 0.0

    def check_fits(self, request: Request) -> None:
        """``ValueError`` if ``request`` could never run, even on an idle pool."""
        problems = []
        if request.cpu > self.cpu + _EPS:
            problems.append(f"{request.cpu:g} CPU(s) but only {self.cpu:g} are available")
        if request.gpu > len(self.gpu_ids) + _EPS:
            problems.append(f"{request.gpu:g} GPU(s) but only {len(self.gpu_ids)} are available")
        if request.memory > self.memory + self._memory_eps:
            problems.append(f"{request.memory:g} bytes of memory but only {self.memory:g} are "
                            "available")
        if problems:
            raise ValueError(
                "a trial asks for " + " and ".join(problems) + "; lower the request in "
                "tune.with_resources(...) or declare more with Tuner(..., resources={'cpu': "
                "..., 'gpu': ..., 'memory': ...})"
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
        if request.memory > 0 and math.isfinite(self.memory):
            counts.append(math.floor(self.memory / request.memory + _EPS))
        return min(counts) if counts else max(1, int(self.cpu))

    def acquire(self, request: Request, prefer: tuple[str, ...] = ()) -> Allocation | None:
        """Reserve ``request``; ``None`` if it does not fit now.

        GPU ids in ``prefer`` (those the slot's process already sees) are
        taken first, so a slot keeps its devices from trial to trial.
        """
        if request.cpu > self._free_cpu + _EPS:
            return None
        if request.memory > self._free_memory + self._memory_eps:
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
        self._free_memory -= request.memory
        for g in gpu_ids:
            self._gpu_free[g] -= fraction
        return Allocation(cpu=request.cpu, gpu_ids=gpu_ids, gpu_fraction=fraction,
                          memory=request.memory)

    def release(self, allocation: Allocation) -> None:
        """Give back what :meth:`acquire` reserved."""
        self._free_cpu = min(self.cpu, self._free_cpu + allocation.cpu)
        self._free_memory = min(self.memory, self._free_memory + allocation.memory)
        for g in allocation.gpu_ids:
            self._gpu_free[g] = min(1.0, self._gpu_free[g] + allocation.gpu_fraction)

    @property
    def free_cpu(self) -> float:
        return self._free_cpu

    @property
    def free_memory(self) -> float:
        return self._free_memory

    def free_gpu(self) -> dict[str, float]:
        """Unreserved fraction of each device."""
        return dict(self._gpu_free)
