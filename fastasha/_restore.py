"""Restore: rebuild a sweep's state by replaying its experiment file.

Nothing is unpickled and no state is snapshotted: the configs are drawn
again from the stored seed (and checked against the stored ones), and the
scheduler calls logged in the file are replayed, in order, into a fresh
scheduler seeded as the original was. Rungs, cut-offs, bracket draws and the
search's random stream therefore continue exactly where they were.

A sweep that used a ``search_alg`` is the exception: its state cannot be
drawn again, so the searcher saved it itself, and the fresh searcher passed
to ``Tuner.restore`` restores it and hears the calls logged after the save
(see :mod:`fastasha._search_state`). Its trials keep their stored configs.
"""

from __future__ import annotations

import json
from typing import Any

from ._controller import (
    ERROR,
    PAUSED,
    PENDING,
    RUNNING,
    SCHEDULER_CALLS,
    TERMINATED,
    Controller,
    Trial,
)
from ._storage import CONFIG_EVENT, SCHEDULER_STATE_EVENT


class RestoreError(ValueError):
    """The experiment cannot be continued with what was passed to Tuner.restore."""


def _config_difference(regenerated: Any, stored: Any, path: str = "") -> str | None:
    """Where two configs (as JSON values) differ, or None.

    Objects JSON cannot hold are stored as ``{"__repr__": ...}``; their repr
    may name a memory address, so any two such leaves count as equal.
    """
    if isinstance(regenerated, dict) and isinstance(stored, dict):
        if set(regenerated) == set(stored) == {"__repr__"}:
            return None
        if list(regenerated) != list(stored):
            return f"keys of {path or 'the config'}: {list(stored)} vs {list(regenerated)}"
        for key in regenerated:
            found = _config_difference(regenerated[key], stored[key], f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(regenerated, list) and isinstance(stored, list):
        if len(regenerated) != len(stored):
            return f"length of {path}"
        for i, (a, b) in enumerate(zip(regenerated, stored)):
            found = _config_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        return None
    if regenerated == stored or (regenerated != regenerated and stored != stored):   # NaN
        return None
    return f"{path.lstrip('/') or 'the config'}: stored {stored!r}, drawn again {regenerated!r}"


def _holds_repr(config: Any) -> bool:
    """Whether a config read back from JSON holds an object kept only as its repr."""
    if isinstance(config, dict):
        if set(config) == {"__repr__"}:
            return True
        return any(_holds_repr(v) for v in config.values())
    if isinstance(config, list):
        return any(_holds_repr(v) for v in config)
    return False


def _decoded(field: Any) -> Any:
    """A field of ``trial_rows(decode=False)`` (JSON text) decoded; decoded ones as they are."""
    return json.loads(field) if isinstance(field, str) else field


def replay(store: Any, controller: Controller, run: Any) -> None:
    """Load every trial of ``store`` into ``controller`` and replay the scheduler calls."""
    from .search import config_to_json

    restore = run.restore
    resume_unfinished = restore.get("resume_unfinished", True)
    resume_errored = restore.get("resume_errored", False)
    restart_errored = restore.get("restart_errored", False)
    # without a search_alg (whose replay reads them all), JSON text decoded one trial at
    # a time: fewer objects alive at once, and equal configs are compared as text
    rows = store.trial_rows(decode=run.searcher is not None)
    # the folder names a trial_dirname_creator gave (none: folders named by trial id)
    dirnames = store.trial_dirnames()
    revived: set[str] = set()
    refreshed: set[str] = set()      # last results taken from the stored results
    trials: list[Trial] = []
    # a search_alg: its saved state, and the calls it got after its save, replayed; its
    # trials keep their stored configs (those it suggests again come back as objects)
    searcher_configs = None if run.searcher is None else \
        run.searcher_state.restore(rows, run.suggest)
    # configs a scheduler gave trials (PBT): the search space gave the first "original",
    # and the trial goes on with the last "config"
    originals: dict[str, Any] = {}
    changed: dict[str, Any] = {}
    for _, trial_id, payload in store.events([CONFIG_EVENT]):
        originals.setdefault(trial_id, payload["original"])
        changed[trial_id] = payload["config"]
    for row in rows:
        trial_id = row["trial_id"]
        if searcher_configs is not None:
            config = searcher_configs.get(trial_id, row["config"])
        else:
            try:
                config = run.suggest(trial_id)
            except StopIteration:
                raise RestoreError(
                    f"the search space gives fewer configs than the {len(rows)} trials "
                    "stored; pass the param_space the experiment started with"
                ) from None
            # the store holds config_to_json's text: equal configs give equal text
            text = None if config is None else config_to_json(config)
            stored = row["config"] if trial_id not in originals else originals[trial_id]
            difference = "no config" if text is None else None if text == stored \
                else _config_difference(json.loads(text), _decoded(stored))
            if difference:
                # (points the store could not keep are not compared before the replay)
                points = " and the BasicVariantGenerator(points_to_evaluate=...)" \
                    if getattr(run, "basic", None) is not None else ""
                raise RestoreError(
                    f"trial {trial_id}'s config differs from the one the search space gives "
                    f"again ({difference}); pass the param_space{points} the experiment "
                    "started with"
                )
        if trial_id in changed:
            config = changed[trial_id]      # (as JSON keeps it)
        request, _ = controller.request_or_error(config)   # a failed request stays failed
        trial = Trial(trial_id=trial_id, index=row["index"], config=config,
                      request=request, bracket=row["bracket"])
        trial.status = row["status"]
        trial.n_failures = row["n_failures"]
        trial.error, trial.traceback = row["error"], row["traceback"]
        trial.result = _decoded(row["last_result"])
        if trial.result:
            trial.iteration = trial.result.get("training_iteration", 0)
        if row["checkpoints"]:
            # in report order, as the controller keeps them (Trial.latest is the last)
            trial.checkpoints = sorted((tuple(c) for c in _decoded(row["checkpoints"])),
                                       key=lambda c: c[1])
        if trial.status in (RUNNING, PENDING, PAUSED) and not resume_unfinished:
            trial.status = TERMINATED       # left as it is: it never runs again
            # with its last stored result: the file's last result of an unfinished trial
            # is from before its run began (a retry's: the failed run's), or none
            history = store.results(trial_id)
            if history:
                trial.result = dict(history[-1], done=True)
                refreshed.add(trial_id)
        elif trial.status == RUNNING:
            trial.status = PENDING          # it was running when the driver stopped
            if trial.checkpoints:
                # It resumes from its checkpoint, and may end without reporting again (its
                # checkpoint was its last step): it ends with its last stored result, not
                # with the stored row's, which dates from before its run began (or none).
                history = store.results(trial_id)
                if history and history[-1].get("training_iteration", 0) >= \
                        (trial.result or {}).get("training_iteration", 0):
                    trial.result = history[-1]
                    trial.iteration = trial.result.get("training_iteration", 0)
        elif trial.status == ERROR and (resume_errored or restart_errored):
            trial.status = PENDING
            trial.error = trial.traceback = None
            trial.n_failures = 0
            if restart_errored:
                trial.checkpoints = []
            revived.add(trial_id)
        if trial.status in (TERMINATED, ERROR):
            trial.scheduler_done = True
        trial.dirname = dirnames.get(trial_id)
        controller.add_dirname(trial)
        trials.append(trial)

    # the scheduler: replay its calls, or (stateless) just register the trials
    by_id = {t.trial_id: t for t in trials}
    recovered: set[str] = set()      # final results taken from the event log
    if controller._by_state:
        # a scheduler restored from its state (PBT): its last logged state, then every
        # trial (which it knows already, or was created after that state was logged)
        state = None
        for _, _, payload in store.events([SCHEDULER_STATE_EVENT]):
            state = payload
        if state is not None:
            controller.scheduler.load_state_dict(state)
        for trial in trials:
            controller.scheduler_call("add", trial.trial_id, log=False, trial=trial)
    elif controller._log_events:
        for kind, trial_id, payload in store.events(SCHEDULER_CALLS):
            if kind == "remove" and trial_id in revived:
                by_id[trial_id].scheduler_done = False     # it runs again
                continue
            out = controller.scheduler_call(kind, trial_id, payload, log=False,
                                            trial=by_id.get(trial_id))
            if kind == "add":
                expected = (payload or {}).get("bracket")
                if expected is not None and out != expected:
                    raise RestoreError(
                        f"replaying the experiment put trial {trial_id} in bracket {out}, "
                        f"but it ran in bracket {expected}; restore with a scheduler built "
                        "with the same arguments"
                    )
            elif kind == "complete" and trial_id in by_id:
                # the scheduler already stopped it: it must not run again
                trial = by_id[trial_id]
                trial.scheduler_done = True
                # The driver may have stopped before the trial's end was recorded (a
                # worker sends the ends of short trials together): its final result
                # is the one the scheduler was given.
                if isinstance(payload, dict) and payload.get("training_iteration", 0) >= \
                        (trial.result or {}).get("training_iteration", 0):
                    final = dict(payload, done=True)
                    if trial.result != final:
                        trial.result = final
                        trial.iteration = payload.get("training_iteration", trial.iteration)
                        recovered.add(trial_id)
    else:
        for trial in trials:
            controller.scheduler_call("add", trial.trial_id, log=False, trial=trial)
    for trial in trials:
        if trial.scheduler_done and trial.status == PENDING and trial.trial_id not in revived:
            trial.status = TERMINATED
    if searcher_configs is not None:
        for trial in trials:
            if trial.status == PENDING and _holds_repr(trial.config):
                raise RestoreError(
                    f"trial {trial.trial_id} must run again, but its config holds objects "
                    "the experiment file keeps only as their repr ({'__repr__': ...}), and "
                    "the search_alg suggested it before its last save, so it cannot give "
                    "them back; restore with resume_unfinished=False (and without "
                    "resume_errored/restart_errored) to end such trials as they are"
                )
        run.searcher_state.end_restored(trials)

    stored_status = {row["trial_id"]: row["status"] for row in rows}
    for trial in trials:
        controller.add_existing(trial)
        if trial.status != stored_status[trial.trial_id] or trial.trial_id in revived:
            store.update_trial(trial.trial_id, status=trial.status, n_failures=trial.n_failures,
                               error=trial.error, traceback=trial.traceback,
                               checkpoints=[list(c) for c in trial.checkpoints],
                               checkpoint=trial.latest[0] if trial.latest else None)
        if trial.trial_id in recovered or trial.trial_id in refreshed:
            store.update_trial(trial.trial_id, last_result=trial.result)
    if controller.total is not None and len(trials) >= controller.total:
        controller.exhausted = True
    store.flush()
