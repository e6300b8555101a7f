"""``with_resources`` and ``with_parameters``: wrappers around an objective.

Both return picklable callables that behave like the objective (call them
with a config) and carry what the Tuner needs: the per-trial resource
request, and large objects shipped once per worker slot instead of once per
trial.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

from ._resources import PlacementGroupFactory, Request, parse_request

# What with_resources takes: a dict, a PlacementGroupFactory, or a function of the config
# returning either.
Resources = Mapping | PlacementGroupFactory | Callable[[dict], Mapping | PlacementGroupFactory]


class _Wrapped:
    """Base of the wrappers: forwards the objective's name and doc."""

    def __init__(self, trainable: Callable) -> None:
        if not callable(trainable):
            raise TypeError(
                f"trainable must be a function taking a config dict, got {trainable!r}"
            )
        self.trainable = trainable
        functools.update_wrapper(self, trainable, updated=())

    @property
    def inner(self) -> Callable:
        """The objective with every wrapper removed."""
        inner = self.trainable
        while isinstance(inner, _Wrapped):
            inner = inner.trainable
        return inner


class ResourceTrainable(_Wrapped):
    """An objective with a resource request; made by :func:`with_resources`."""

    def __init__(self, trainable: Callable, resources: Resources) -> None:
        super().__init__(trainable)
        if callable(resources) and not isinstance(resources, (Mapping, PlacementGroupFactory)):
            self.request_fn: Callable[[dict], Mapping | PlacementGroupFactory] | None = resources
            self.fixed: Request | None = None
        else:
            self.request_fn = None
            self.fixed = parse_request(resources)

    # what the request_fn is, for the message when it fails
    _source = "the resource function passed to with_resources"

    def request_for(self, config: dict) -> Request:
        """The request of the trial with ``config``."""
        if self.fixed is not None:
            return self.fixed
        try:
            asked = self.request_fn(config)
        except Exception as err:
            raise ValueError(f"{self._source} failed: {err!r}") from err
        return parse_request(asked)

    def __call__(self, config: dict, **kwargs: Any) -> Any:
        return self.trainable(config, **kwargs)


class ParameterTrainable(_Wrapped):
    """An objective called as ``trainable(config, **parameters)``; see :func:`with_parameters`."""

    def __init__(self, trainable: Callable, parameters: dict) -> None:
        super().__init__(trainable)
        self.parameters = parameters

    def __call__(self, config: dict, **kwargs: Any) -> Any:
        return self.trainable(config, **self.parameters, **kwargs)


def with_resources(trainable: Callable, resources: Resources) -> ResourceTrainable:
    """Attach a per-trial resource request to an objective.

    Parameters
    ----------
    trainable : callable
        The objective, ``trainable(config)``.
    resources : dict, PlacementGroupFactory or callable
        ``{"cpu": n, "gpu": m, "memory": b}`` (a missing key means 1 CPU, 0
        GPU and no memory; memory is in bytes), a
        :class:`~fastasha.tune.PlacementGroupFactory` (the trial gets the
        sum of its bundles), or a function of the trial's config returning
        either. ``gpu`` may be a fraction of one device (``0.5`` packs two
        trials per GPU).

    Returns
    -------
    callable
        The objective, carrying its request.

    Raises
    ------
    ValueError, TypeError
        For a request fastasha cannot schedule: a resource other than CPU,
        GPU and memory, a negative amount, or a fractional GPU count above
        1. A resource function's bad answer fails only that trial.

    Notes
    -----
    In Ray a dict without ``"cpu"`` asks for no CPU (``{"gpu": 1}`` is 0
    CPUs and 1 GPU); in fastasha it asks for 1 CPU.

    Examples
    --------
    >>> from fastasha import tune
    >>> def objective(config):
    ...     tune.report({"loss": config["x"]})
    >>> wrapped = tune.with_resources(objective, {"cpu": 2, "gpu": 0})
    >>> wrapped.request_for({"x": 1})
    Request(cpu=2.0, gpu=0.0, memory=0.0)
    >>> bundles = tune.PlacementGroupFactory([{"CPU": 1}, {"CPU": 2, "memory": 2e9}])
    >>> tune.with_resources(objective, bundles).request_for({"x": 1})
    Request(cpu=3.0, gpu=0.0, memory=2000000000.0)
    """
    return ResourceTrainable(trainable, resources)


def with_parameters(trainable: Callable, **parameters: Any) -> ParameterTrainable:
    """Pass large objects to an objective once per worker instead of once per trial.

    The objective is called as ``trainable(config, **parameters)``. The
    objects are pickled with the objective when a worker slot starts, so a
    data set is sent to each worker once, not with every trial.

    Examples
    --------
    >>> from fastasha import tune
    >>> def objective(config, data):
    ...     tune.report({"loss": sum(data) * config["x"]})
    >>> wrapped = tune.with_parameters(objective, data=[1, 2, 3])
    >>> sorted(wrapped.parameters)
    ['data']
    """
    if not parameters:
        raise ValueError("with_parameters needs at least one keyword argument to pass along")
    return ParameterTrainable(trainable, dict(parameters))


class _ClassRequest(ResourceTrainable):
    """The request of a ``Trainable`` class that overrides ``default_resource_request``."""

    def __init__(self, trainable: Callable, cls: type) -> None:
        super().__init__(trainable, functools.partial(_default_request, cls))
        self._source = f"{cls.__qualname__}.default_resource_request"


def _default_request(cls: type, config: dict) -> Mapping | PlacementGroupFactory:
    asked = cls.default_resource_request(config)
    return {"cpu": 1} if asked is None else asked     # None: Ray's default, one CPU


def request_of(trainable: Callable) -> ResourceTrainable | None:
    """The outermost resource wrapper of ``trainable``, if any.

    Without one, a :class:`~fastasha.trainable.Trainable` class that
    overrides ``default_resource_request`` asks for what that returns for
    each trial's config, as in Ray.
    """
    node = trainable
    while isinstance(node, _Wrapped):
        if isinstance(node, ResourceTrainable):
            return node
        node = node.trainable
    from .trainable import ClassTrainable, Trainable

    cls = node.cls if isinstance(node, ClassTrainable) else node
    if isinstance(cls, type) and issubclass(cls, Trainable) and \
            getattr(cls.default_resource_request, "__func__", None) is not \
            Trainable.default_resource_request.__func__:
        return _ClassRequest(node, cls)
    return None


# Trainables registered by name (tune.register_trainable), in this process
_REGISTRY: dict[str, Callable] = {}


def register_trainable(name: str, trainable: Callable, warn: bool = True) -> None:
    """Register ``trainable`` under ``name``, so that ``Tuner(name)`` and ``tune.run(name)`` run it.

    As Ray Tune's ``tune.register_trainable``. The registry belongs to this
    process (Ray's lives in the cluster): the Tuner looks the name up when
    it is built and ships the trainable itself to its workers. Registering
    a name again replaces the earlier trainable, as in Ray.

    Parameters
    ----------
    name : str
        The name to run it by.
    trainable : callable
        An objective function (or a ``with_resources`` / ``with_parameters``
        wrapper of one) or a :class:`~fastasha.trainable.Trainable` class.
    warn : bool, default=True
        Accepted for Ray's signature; fastasha has no heuristics to warn about.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"the name to register a trainable under must be a non-empty string, "
                        f"got {name!r}")
    if not callable(trainable):
        raise TypeError(f"register_trainable({name!r}, ...) needs a function or a Trainable "
                        f"class, got {trainable!r}")
    _REGISTRY[name] = trainable


def resolve_trainable(trainable: Any) -> Any:
    """The trainable registered under ``trainable`` if it is a name; else ``trainable`` itself."""
    if not isinstance(trainable, str):
        return trainable
    try:
        return _REGISTRY[trainable]
    except KeyError:
        known = ", ".join(repr(n) for n in sorted(_REGISTRY)) or "none"
        raise ValueError(
            f"no trainable is registered as {trainable!r} (registered: {known}); register it "
            f"first with tune.register_trainable({trainable!r}, objective), or pass the "
            "objective itself"
        ) from None
