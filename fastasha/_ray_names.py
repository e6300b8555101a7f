"""What the Ray-compatible namespaces share: attribute lookup and submodule aliases.

:func:`lookup` serves :mod:`fastasha.train` and :mod:`fastasha.air`;
:func:`install_aliases` lets :mod:`fastasha.tune` and :mod:`fastasha.train`
be imported from like Ray's packages (``fastasha.tune.schedulers``,
``fastasha.train.xgboost``).
"""

from __future__ import annotations

import sys
from importlib import import_module
from importlib.machinery import ModuleSpec
from typing import Any, Callable


def lookup(module: str, name: str, namespace: dict, refused: frozenset, what: str) -> Any:
    """A module ``__getattr__``: ``Result`` on first use, and errors that say why a name is missing.

    ``refused`` are the names of Ray's distributed training that ``module``
    leaves out; ``what`` names that part of Ray in the error.
    """
    if name == "Result":          # loads the results module on first use
        from .results import Result

        namespace["Result"] = Result
        return Result
    if name in refused:
        raise AttributeError(
            f"{module} has no {name!r}: fastasha runs Ray Tune's function and class "
            f"trainables, one process per trial, not {what}. Pass your training function "
            "to tune.Tuner directly and give each trial its resources with "
            "tune.with_resources(fn, {'cpu': n, 'gpu': m})"
        )
    raise AttributeError(f"module {module!r} has no attribute {name!r}")


class AliasFinder:
    """Import ``<namespace>.<name>`` as the fastasha module it stands for.

    ``real_name(name)`` gives that module's full name, or None for a name
    that is no alias (the finder then leaves the import to others). The
    alias is the very same module object, not a second copy, so a class
    imported by either path is one class (``isinstance`` and pickling
    work). The finder sits first on ``sys.meta_path``: otherwise the path
    finder would load a submodule such as ``fastasha.tune.schedulers.fifo``
    again, from the real package's ``__path__``, as a copy. A module that
    needs a missing library (xgboost, say) fails the import with its own
    ``ModuleNotFoundError``, which says what to install.
    """

    def __init__(self, namespace: str, real_name: Callable[[str], str | None]) -> None:
        self.fastasha_aliases_of = namespace      # marks an installed finder
        self.prefix = namespace + "."
        self.real_name = real_name

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if not fullname.startswith(self.prefix):
            return None
        real = self.real_name(fullname[len(self.prefix):])
        if real is None:
            return None
        return ModuleSpec(fullname, self, loader_state=real)

    def create_module(self, spec: ModuleSpec) -> Any:
        module = import_module(spec.loader_state)
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module: Any) -> None:
        # the import system has just set the alias's spec on the module: give
        # the module its own back (importlib.reload and tools read it)
        module.__spec__ = module.__spec__.loader_state


def install_aliases(namespace: str, real_name: Callable[[str], str | None]) -> None:
    """Put an :class:`AliasFinder` for ``namespace`` first on ``sys.meta_path``.

    A finder an earlier import of the namespace installed (a reload) is
    replaced, not kept beside the new one. The namespace module must have a
    ``__path__`` (an empty list will do), so that the import system looks
    for its submodules at all.
    """
    sys.meta_path[:] = [f for f in sys.meta_path
                        if getattr(f, "fastasha_aliases_of", None) != namespace]
    sys.meta_path.insert(0, AliasFinder(namespace, real_name))
