"""A ``search_alg``'s state: saved next to the experiment file, restored from it.

As in Ray Tune, the searcher saves itself: the sweep calls
``save_to_dir(experiment_dir, session_str=...)`` of the searcher (the one a
``ConcurrencyLimiter`` wraps), which calls the searcher's own ``save`` and
leaves ``searcher-state-<session_str>.pkl`` (``CKPT_FILE_TMPL``) next to
``experiment.db``. ``Tuner.restore(..., search_alg=fresh)`` hands that file
to the fresh searcher's ``restore_from_dir``. fastasha never opens the file:
it is in whatever format the user's ``save`` writes, and only the user's
``restore`` reads it.

When
----
At the start of every ``fit()`` (of a restore too, once the state is
restored), then from the driver's loop at most every
``FASTASHA_SEARCHER_SAVE_S`` seconds (default 10, Ray's shortest period) and
only when the searcher got a call since its last save (every period when it
overrides ``on_trial_result``), and at the end of ``fit()``, Ctrl-C and
stoppers included. A save that takes ``d`` seconds puts the next one at
least ``19 * d`` seconds later, as Ray's automatic period does, so that
saving takes at most a twentieth of the driver's time. Nothing is saved per
report.

Consistency with the experiment file
------------------------------------
The experiment file is written every few milliseconds; the searcher's
state only at a save. So that the two agree after a crash:

* Each save first commits everything queued in the experiment file, then
  writes there (``meta`` key ``"searcher_state"``, JSON) a marker naming
  the file about to be written and how many searcher calls were logged so
  far, then lets the searcher save, then deletes the older state files.
  Each save has a session string of its own, a counter (``"00000007"``), so
  that a save killed half-way leaves the previous file and its marker
  intact; the newest marker whose file exists is the one restored (and the
  restore deletes the temporary file such a save left).
* While the state is saved, the controller logs the searcher calls that
  change what it knows of the sweep in the experiment file's event log:
  each suggestion that created a trial (``"searcher.suggest"``) and each
  ``on_trial_complete`` (``"searcher.complete"``; its result is the
  trial's stored last result). Two small rows per trial, none per report.
* A restore gives the fresh searcher the saved state and then replays the
  calls logged after that save: ``suggest(trial_id)`` for each trial
  created since (a config other than the stored one is warned of, and the
  trial keeps the stored one; a trial it does not suggest again is warned
  of and never told about, by this sweep or a later restore's: the markers
  of its saves name it) and ``on_trial_complete`` for each trial that
  ended since. A trial it still counts as running that the restore ends
  without running it again (``resume_unfinished=False``, or one the
  scheduler stopped just before the driver stopped) then hears
  ``on_trial_complete`` with its last result; Ray's searcher is not told,
  and its ``ConcurrencyLimiter`` keeps such a trial live for ever.
  The searcher thus knows the trials the experiment file knows, and no
  config is suggested twice. Ray saves the trials and the searcher in the
  same checkpoint and loses what came after it: its restored searcher hears
  a trial that ended after the checkpoint when the trial, run again from
  its checkpoint, ends again; fastasha keeps those trials and tells the
  searcher how they ended. ``on_trial_result`` calls are not replayed.

The wrappers around the searcher (a ``ConcurrencyLimiter``, and any
object with a ``searcher`` attribute, as Ray walks them) keep their
``get_state()`` in the marker as JSON (sets and tuples tagged), and get it
back with ``set_state`` before the searcher restores, as Ray's search
generator does with pickle.
"""

from __future__ import annotations

import glob
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from ._controller import (
    ERROR,
    SEARCHER_CALLS,
    SEARCHER_COMPLETE,
    SEARCHER_SUGGEST,
    TERMINATED,
    Controller,
)
from ._restore import RestoreError, _config_difference
from ._rows import flatten
from ._storage import from_tagged_json, to_tagged_json
from ._validation import seconds_from_env
from .search import config_to_json
from .search.searcher import Searcher

SAVE_ENV = "FASTASHA_SEARCHER_SAVE_S"
DEFAULT_SAVE_S = 10.0
# A save taking d seconds puts the next one at least this many times d later.
SAVE_COST_FACTOR = 19.0
META_KEY = "searcher_state"
FORMAT = "fastasha.searcher_state/1"
# Markers kept: the newest, and the one before in case the newest save was killed.
N_MARKERS = 2
# The temporary file Searcher.save_to_dir writes before its rename starts so (then
# comes the state file's name)
TMP_PREFIX_PATTERN = ".*-tmp-"


def save_interval_s() -> float:
    """``$FASTASHA_SEARCHER_SAVE_S`` (seconds, greater than 0), or 10."""
    return seconds_from_env(SAVE_ENV, DEFAULT_SAVE_S)


def searcher_chain(search_alg: Any) -> list:
    """``search_alg`` and the searchers it wraps, outermost first (Ray's ``.searcher`` walk)."""
    chain = [search_alg]
    while hasattr(chain[-1], "searcher") and len(chain) < 64:
        chain.append(chain[-1].searcher)
    return chain


def class_names(search_alg: Any) -> list[str]:
    """The class names of :func:`searcher_chain`, as the experiment records them."""
    return [type(s).__name__ for s in searcher_chain(search_alg)]


def _template(base: Any) -> str:
    template = getattr(base, "CKPT_FILE_TMPL", Searcher.CKPT_FILE_TMPL)
    return template if isinstance(template, str) else Searcher.CKPT_FILE_TMPL


def _session_number(marker: dict) -> int:
    try:
        return int(marker.get("session_str", 0))
    except (TypeError, ValueError):
        return 0


# ------------------------------------------------------------------------ checks

def _usable_marker(directory: Path, meta: dict | None) -> dict | None:
    """The newest saved state whose file exists, or None."""
    for marker in reversed((meta or {}).get("saves") or []):
        name = marker.get("file")
        if isinstance(name, str) and (directory / name).is_file():
            return marker
    return None


def check_restorable(store: Any, directory: Path, settings: dict, search_alg: Any) -> None:
    """Raise ValueError unless ``search_alg`` can continue this experiment's sweep.

    Called by ``Tuner.restore`` with the experiment opened read-only.
    """
    search = settings.get("search", {})
    used = bool(search.get("custom_searcher"))
    names = search.get("searcher") or []
    name = " wrapping ".join(names) if names else None
    if not used:
        if search_alg is not None:
            raise ValueError(
                "this experiment did not use a search_alg (its configs came from param_space), "
                "so Tuner.restore(search_alg=...) has nothing to restore; leave it out")
        return
    if search_alg is None:
        construction = f"{names[-1]}(...)" if names else "MySearcher(...)"
        for wrapper in reversed(names[:-1]):
            construction = f"{wrapper}({construction}, ...)"
        raise ValueError(
            f"this experiment used the search_alg {name or '(of an unrecorded class)'}, which "
            "the experiment file does not keep (it holds no code); pass a fresh one built "
            "with the same arguments: Tuner.restore(path, trainable, search_alg="
            f"{construction}). Its saved state is restored into it")
    given = class_names(search_alg)
    if names and given != names:
        warnings.warn(
            f"the experiment used the search_alg {name}, but "
            f"{' wrapping '.join(given)} was passed to Tuner.restore; its saved state may "
            "not fit", UserWarning, stacklevel=3)
    meta = store.meta(META_KEY)
    if (meta or {}).get("unsupported"):
        raise ValueError(
            f"the search_alg {name} of this experiment did not save its state: its "
            "save(checkpoint_path) is not implemented (or it has no save_to_dir), so "
            "Tuner.restore cannot continue its sweep where it stopped (Ray logs the same "
            "error and starts the experiment over). Read its results with "
            f"ResultGrid.from_path(path); implement save() and restore() in {name} to make "
            "the next experiment restorable")
    if _usable_marker(directory, meta) is None and \
            next(iter(store.events(SEARCHER_CALLS)), None) is not None:
        raise ValueError(
            f"the saved state of the search_alg {name} is missing from {directory} (no "
            f"file {_template(searcher_chain(search_alg)[-1]).format('*')!r} that the "
            "experiment file names), so Tuner.restore cannot continue its sweep; read its "
            "results with ResultGrid.from_path(path)")
    if meta is None and store.trial_rows(decode=False):
        raise ValueError(
            f"this experiment used the search_alg {name} but holds no saved state of it (it "
            "was run by a fastasha that did not save searchers); read its results with "
            "ResultGrid.from_path(path)")


# ------------------------------------------------------------------------ saving

class SearcherState:
    """Saves a ``search_alg``'s state during a sweep and restores it (module docstring).

    Parameters
    ----------
    search_alg : object
        The sweep's ``search_alg``.
    directory : Path
        The experiment folder.
    store : ExperimentStore
        The experiment file, open for writing.
    controller : Controller
        The sweep's controller (it logs the searcher calls).
    interval_s : float
        The shortest time between two saves while the sweep runs.
    hears_results : bool
        Whether the searcher overrides ``on_trial_result``: its state may
        then change with any report, and it is saved every period.
    """

    def __init__(self, search_alg: Any, directory: Path, store: Any, controller: Controller,
                 interval_s: float, hears_results: bool) -> None:
        self.search_alg = search_alg
        chain = searcher_chain(search_alg)
        self.wrappers, self.base = chain[:-1], chain[-1]
        self.directory = Path(directory)
        self.store = store
        self.controller = controller
        self.interval_s = interval_s
        self.period = interval_s
        self.hears_results = hears_results
        self.supported = callable(getattr(self.base, "save_to_dir", None))
        self.names = class_names(search_alg)
        self.label = " wrapping ".join(self.names)
        self.markers: list[dict] = []
        self.generation = 0
        self.saved_calls: int | None = None     # n_searcher_calls at the last save
        self.saved_at = -float("inf")           # time.monotonic() of the last save
        self._unsaved_wrappers: set[str] = set()
        self._open: set[str] = set()            # restore: trials not ended for the searcher

    # ------------------------------------------------------------------ saving

    def _write_meta(self, markers: list[dict], unsupported: bool) -> None:
        self.store.set_meta(META_KEY, {"format": FORMAT, "searcher": self.names,
                                       "unsupported": unsupported, "saves": markers})

    def _wrapper_states(self) -> list[dict]:
        states = []
        for wrapper in self.wrappers:
            name = type(wrapper).__name__
            state = None
            get_state = getattr(wrapper, "get_state", None)
            if callable(get_state):
                try:
                    state = to_tagged_json(get_state())   # (sets, tuples kept)
                except (NotImplementedError, TypeError) as err:
                    if name not in self._unsaved_wrappers:
                        self._unsaved_wrappers.add(name)
                        warnings.warn(
                            f"the state of the search_alg wrapper {name} cannot be saved "
                            f"({type(err).__name__}: {err}); a restore starts it afresh",
                            UserWarning, stacklevel=4)
            states.append({"class": name, "state": state})
        return states

    def save(self) -> None:
        """Save the searcher's state now, as a new save (see the module docstring)."""
        if not self.supported:
            if self.saved_calls is None:            # once per fit: the restore refuses it
                self._write_meta([], unsupported=True)
                self.saved_calls = -1
            return
        self.store.flush()       # the experiment file first: it must know what the searcher does
        n_calls = self.controller.n_searcher_calls
        self.generation += 1
        session_str = f"{self.generation:08d}"
        name = _template(self.base).format(session_str)
        marker = {"session_str": session_str, "file": name, "n_calls": n_calls,
                  "wrappers": self._wrapper_states()}
        if self.controller.searcher_strangers:      # kept from it by a restore: and later
            marker["strangers"] = sorted(self.controller.searcher_strangers)
        markers = (self.markers + [marker])[-N_MARKERS:]
        self._write_meta(markers, unsupported=False)
        self.base.save_to_dir(str(self.directory), session_str=session_str)
        if not (self.directory / name).is_file():
            # save() is not implemented (save_to_dir warned), or wrote nothing
            if not self.markers:
                self.supported = False
                self.controller.log_searcher = False
                self._write_meta([], unsupported=True)
                self.saved_calls = -1
            else:
                self._write_meta(self.markers, unsupported=False)
            return
        self.markers = markers
        self.saved_calls = n_calls
        self.saved_at = time.monotonic()
        self.controller.log_searcher = True
        self._remove_files(keep=name)

    def periodic(self, now: float) -> float:
        """Save if due and something changed; when to be called next (the driver's hook)."""
        if now < self.saved_at + self.period:
            return self.saved_at + self.period
        if self.supported and (self.hears_results or
                               self.controller.n_searcher_calls != self.saved_calls):
            started = time.monotonic()
            self.save()
            self.period = max(self.interval_s, SAVE_COST_FACTOR * (time.monotonic() - started))
        return now + self.period

    def start_fresh(self) -> None:
        """Delete the state files in the folder before a new experiment's first save.

        A new experiment has none of its own: any there were left by the
        experiment that ``RunConfig(overwrite=True)`` (``FASTASHA_OVERWRITE=1``)
        replaced, possibly one whose driver was killed. :meth:`save` would take
        such a file, named as the one it was about to write, for its own (with
        a searcher that saves nothing, or when killed before its rename), and a
        restore would then hand the replaced experiment's state to the searcher.
        """
        self._remove_temporaries()
        self._remove_files(keep="")

    def _files(self) -> list[str]:
        pattern = _template(self.base).format("*")
        return glob.glob(os.path.join(glob.escape(str(self.directory)), pattern))

    def _remove_temporaries(self) -> None:
        """Delete what saves killed before their rename left (``Searcher.save_to_dir``)."""
        pattern = TMP_PREFIX_PATTERN + _template(self.base).format("*")
        for path in glob.glob(os.path.join(glob.escape(str(self.directory)), pattern)):
            try:
                os.remove(path)
            except OSError:
                pass

    def _remove_files(self, keep: str, newer_only: bool = False) -> None:
        """Delete the state files other than ``keep`` (only those sorting after it)."""
        for path in self._files():
            base = os.path.basename(path)
            if base != keep and (not newer_only or base > keep):
                try:
                    os.remove(path)
                except OSError:
                    pass

    # --------------------------------------------------------------- restoring

    def restore(self, rows: list[dict], suggest: Callable[[str], Any]) -> dict[str, Any]:
        """Restore the saved state into the fresh ``search_alg`` and replay what came after.

        ``rows`` are the stored trials and ``suggest`` the Tuner's
        suggestion function. Returns the configs the searcher suggested again
        for the trials created after its save, by trial id, where they match
        the stored ones (the others keep their stored config).
        """
        meta = self.store.meta(META_KEY) or {}
        calls = list(self.store.events(SEARCHER_CALLS))
        saves = [m for m in meta.get("saves") or [] if isinstance(m, dict)]
        self.generation = max((_session_number(m) for m in saves), default=0)
        marker = _usable_marker(self.directory, meta)
        self._remove_temporaries()      # no save runs now: the experiment's lock is held
        start = 0
        if marker is None:
            if calls:        # (Tuner.restore checked this already)
                raise RestoreError(f"the saved state of the search_alg {self.label} is "
                                   f"missing from {self.directory}")
        else:
            start = int(marker.get("n_calls", 0))
            if start > len(calls):
                raise RestoreError(
                    f"the saved state of the search_alg {self.label} knows {start} calls, "
                    f"but the experiment file logged only {len(calls)}; the file "
                    f"{marker['file']} does not belong to this experiment file")
            self.markers = saves[:saves.index(marker) + 1]
            self._set_wrapper_states(marker)
            strangers = marker.get("strangers")
            if isinstance(strangers, list):
                self.controller.searcher_strangers.update(strangers)
            self._remove_files(keep=marker["file"], newer_only=True)   # of a killed save
            self.base.restore_from_dir(str(self.directory))
        configs = self._replay(calls[start:], rows, suggest)
        self.controller.n_searcher_calls = len(calls)
        # the trials the searcher was given and has not heard the end of
        ended = {trial_id for kind, trial_id, _ in calls if kind != SEARCHER_SUGGEST}
        self._open = {trial_id for kind, trial_id, _ in calls
                      if kind == SEARCHER_SUGGEST and trial_id not in ended}
        self._open -= self.controller.searcher_strangers
        return configs

    def end_restored(self, trials: list) -> None:
        """Tell the searcher the end of the trials the restore ends without running them.

        Called once the restore has decided each trial's status: a trial the
        searcher still counts as running that will not run again (ended by
        ``resume_unfinished=False``, or stopped by the scheduler just before
        the driver stopped) hears ``on_trial_complete`` with its last result
        (or, if ERROR, none), and the call is logged as any other. Ray says
        nothing to its searcher here, so that a ``ConcurrencyLimiter`` keeps
        the trial live for ever and the sweep waits.
        """
        controller = self.controller
        for trial in trials:
            if trial.trial_id not in self._open or trial.status not in (TERMINATED, ERROR):
                continue
            error = trial.status == ERROR
            result = None if error or not trial.result else flatten(trial.result)
            controller._tell_searcher("on_trial_complete", trial.trial_id, result=result,
                                      error=error)
            controller.log_searcher_call(SEARCHER_COMPLETE, trial.trial_id,
                                         {"error": True} if error else None)
        self._open = set()

    def _set_wrapper_states(self, marker: dict) -> None:
        stored = marker.get("wrappers") or []
        for i, wrapper in enumerate(self.wrappers):
            entry = stored[i] if i < len(stored) else None
            name = type(wrapper).__name__
            if entry is None or entry.get("class") != name or entry.get("state") is None:
                warnings.warn(f"no saved state of the search_alg wrapper {name}: it starts "
                              "afresh", UserWarning, stacklevel=4)
                continue
            wrapper.set_state(from_tagged_json(entry["state"]))

    def _replay(self, calls: list[tuple], rows: list[dict],
                suggest: Callable[[str], Any]) -> dict[str, Any]:
        """Make the searcher calls logged after the save again (see the module docstring)."""
        by_id = {row["trial_id"]: row for row in rows}
        strangers = self.controller.searcher_strangers
        configs: dict[str, Any] = {}
        differing: list[str] = []
        not_again: list[str] = []       # strangers found now (not those of an earlier restore)
        for kind, trial_id, payload in calls:
            row = by_id.get(trial_id)
            if row is None or trial_id in strangers:
                continue
            if kind == SEARCHER_SUGGEST:
                try:
                    config = suggest(trial_id)
                except StopIteration:
                    config = None
                if config is None:
                    strangers.add(trial_id)
                    not_again.append(trial_id)
                    continue
                if _config_difference(json.loads(config_to_json(config)), row["config"]):
                    differing.append(trial_id)
                else:
                    configs[trial_id] = config
            else:
                on_complete = getattr(self.search_alg, "on_trial_complete", None)
                if on_complete is not None:
                    # as the controller told it: an error without a result; otherwise the
                    # trial's last result, flattened (a trial that ended does not run again)
                    error = bool((payload or {}).get("error"))
                    last = row["last_result"]
                    on_complete(trial_id, result=None if error or last is None else flatten(last),
                                error=error)
        name = self.label
        if differing:
            warnings.warn(
                f"the restored search_alg {name} suggested other configs than it had for "
                f"{len(differing)} trial(s) created after its last save ({', '.join(differing)}"
                "); they keep the configs they ran with, but the searcher attributes their "
                "results to the configs it suggested now (a searcher whose suggestions "
                "depend on its saved state alone avoids this)", UserWarning, stacklevel=4)
        if not_again:
            warnings.warn(
                f"the restored search_alg {name} did not suggest again the trial(s) "
                f"{', '.join(sorted(not_again))}, created after its last save; they keep "
                "their configs, and the searcher hears nothing of them", UserWarning,
                stacklevel=4)
        return configs
