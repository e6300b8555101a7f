"""Ray Tune's MLflow integration: ``from fastasha.air.integrations.mlflow import ...``.

Ray 2.x's ``ray.air.integrations.mlflow`` (and Ray 1.x's
``ray.tune.integration.mlflow``, here ``fastasha.tune.integration.mlflow``)
with the same names and arguments:

* :class:`MLflowLoggerCallback`, passed in ``RunConfig(callbacks=[...])``,
  logs every trial as an MLflow run from the driver: the flattened config as
  parameters, every numeric value of every result as a metric at step
  ``timesteps_total`` (when reported) or ``training_iteration``, and the end
  status, ``FINISHED`` or ``FAILED``; with ``save_artifact=True`` the
  trial's folder is uploaded as the run's artifacts when the trial ends.
* :func:`setup_mlflow`, called inside the objective, starts an MLflow run
  for the trial in the trial's process and returns the ``mlflow`` module,
  so that ``mlflow.log_metric(...)`` or ``mlflow.autolog()`` log into it.

Both need MLflow's client: ``pip install mlflow-skinny`` (or the full
``mlflow``); in a clone of fastasha, ``pip install -e ".[mlflow]"``. With
MLflow 3, the default store, ``sqlite:///mlflow.db`` in the working
directory, also needs SQLAlchemy and alembic, which the extra installs;
MLflow 3 refuses ``file:`` stores unless ``MLFLOW_ALLOW_FILE_STORE=true``.

Where fastasha differs from Ray (2.53):

* The callback writes from a background thread of the driver, in batches
  (``MlflowClient.log_batch``, at most a second apart, sooner when a
  thousand values are waiting or a trial ends), so that a slow tracking
  server does not hold up the sweep; Ray makes several requests per result
  in the driver's loop. ``fit()`` returns once everything is written.
* A tracking server that fails after ``setup`` does not end the sweep, as
  it does in Ray (ray-project/ray's MLflow callback raises from the hook;
  mlflow/mlflow#6012): the writes wait and are retried, with a
  ``RuntimeWarning``, and whatever could still not be written when
  ``fit()`` ends (after up to 30 s more of trying) is counted in a warning;
  every result is in the experiment folder anyway. Only when more than a
  million values wait does the callback end the sweep with a
  ``RuntimeError`` (as any callback error does: everything reported so far
  is saved, and ``Tuner.restore`` continues it). Configuration errors (no
  experiment, a bad URI) raise from ``setup``, before any trial starts, as
  in Ray. A value MLflow refuses for good (a key with characters it does
  not allow, say), or a run's start or end (a run deleted during the
  sweep), is left out, with a warning, and the rest is written; so is a
  trial's artifact upload that failed twice for a reason no retry mends
  (an artifact store that cannot be written, a missing ``boto3``).
* The ids of the runs of unfinished trials are kept with the experiment
  (the callback's state), so that ``Tuner.restore(..., callbacks=[
  MLflowLoggerCallback(...)])`` continues those trials in the same runs.
* ``setup_mlflow`` ends the run it started once the trial's objective has
  returned, raised or been stopped, before the trial counts as ended
  (with status ``FINISHED``, as MLflow's own ``atexit`` handler does when
  a Ray trial's process exits): fastasha's trial processes run several
  trials one after another and leave without running ``atexit``
  handlers. The objective need not end it itself. Ray's default
  experiment for ``setup_mlflow`` is the trial's name; here too.
* Ray Train's worker ranks do not exist: ``rank_zero_only`` is accepted
  and, as Ray's documentation says for Tune, ignored.
* Ray 1.x's ``mlflow_mixin`` and ``MLflowTrainableMixin`` are not provided;
  ``setup_mlflow`` replaces them (as in Ray 2.x).
"""

from __future__ import annotations

import atexit
import collections
import os
import threading
import time
import warnings
import weakref
from types import ModuleType
from typing import Any, Sequence

from ..._rows import flatten
from ..._session import get_context
from ..._validation import check_bool, user_stacklevel
from ...logger import LoggerCallback
from ._tracking import (
    at_trial_end,
    check_config,
    check_optional_str,
    check_tags,
    missing,
)

# How long the writer waits to batch results, at most, and how many values make
# it write at once; how long fit() keeps trying a failing server at its end; how
# many values may wait before the sweep is ended.
FLUSH_S = 1.0
FLUSH_VALUES = 1000
END_RETRY_S = 30.0
MAX_WAITING = 1_000_000
# how many times a trial's artifact upload may fail for a reason a retry does not mend
UPLOAD_TRIES = 2
# MLflow's own limits per request (mlflow.utils.validation)
_METRICS_PER_REQUEST = 1000
_PARAMS_PER_REQUEST = 100
_PARAM_LENGTH = 6000
# MlflowException error codes for a request that will never succeed as it is
_PERMANENT = frozenset({"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "RESOURCE_DOES_NOT_EXIST",
                        "INVALID_STATE", "RESOURCE_ALREADY_EXISTS"})


def _import_mlflow(what: str) -> ModuleType:
    try:
        import mlflow
    except ImportError as err:
        raise missing("MLflow", "mlflow-skinny", "mlflow", what, err) from err
    return mlflow


def _resolve_experiment(client: Any, experiment_id: str | None, experiment_name: str | None,
                        create: bool, artifact_location: str | None) -> str:
    """The id of the MLflow experiment to log into, found as Ray finds it.

    ``experiment_id`` (or ``$MLFLOW_EXPERIMENT_ID``) if that experiment exists,
    else the experiment named ``experiment_name`` (or
    ``$MLFLOW_EXPERIMENT_NAME``), created when missing if ``create``.
    """
    from mlflow.exceptions import MlflowException

    experiment_id = experiment_id if experiment_id is not None else \
        os.environ.get("MLFLOW_EXPERIMENT_ID")
    if experiment_id is not None:
        try:
            found = client.get_experiment(str(experiment_id))
        except MlflowException:
            found = None
        if found is not None:
            return found.experiment_id
    experiment_name = experiment_name if experiment_name is not None else \
        os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if experiment_name is not None:
        found = client.get_experiment_by_name(experiment_name)
        if found is not None:
            return found.experiment_id
        if create:
            return client.create_experiment(experiment_name, artifact_location=artifact_location)
    if create:
        raise ValueError(
            f"no MLflow experiment with the id {experiment_id!r} exists, and no experiment "
            "name was given: pass experiment_name='...' (created if missing), or set "
            "MLFLOW_EXPERIMENT_NAME or MLFLOW_EXPERIMENT_ID")
    raise ValueError(
        f"no MLflow experiment with the id {experiment_id!r} or the name {experiment_name!r} "
        "exists: create it first (mlflow.create_experiment(name)), pass the name of one that "
        "exists, or pass create_experiment_if_not_exists=True")


def _params(config: dict | None) -> dict[str, str]:
    """The flattened config as MLflow parameters (text, cut to MLflow's length limit)."""
    out = {}
    for key, value in flatten(dict(config or {})).items():
        text = str(value)
        out[str(key)] = text if len(text) <= _PARAM_LENGTH else text[:_PARAM_LENGTH - 3] + "..."
    return out


def _numeric(result: dict) -> dict[str, float]:
    """The values of ``result`` (flattened) that convert to float, as Ray logs them."""
    out = {}
    for key, value in flatten(result).items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def _step(result: dict) -> int:
    """Ray's step: ``timesteps_total`` when reported (and not 0), else ``training_iteration``."""
    step = result.get("timesteps_total") or result.get("training_iteration") or 0
    try:
        return int(step)
    except (TypeError, ValueError):
        return 0


class _Op:
    """One write for the writer thread: start a run, log values, end a run."""

    __slots__ = ("kind", "trial_id", "payload", "n_values")

    def __init__(self, kind: str, trial_id: str, payload: Any, n_values: int = 0) -> None:
        self.kind = kind
        self.trial_id = trial_id
        self.payload = payload
        self.n_values = n_values


class _Writer:
    """The thread that writes a callback's runs to MLflow, in order per trial.

    The driver queues :class:`_Op` objects; the thread takes all that wait
    (at most every ``FLUSH_S`` seconds, at once when a run ends or
    ``FLUSH_VALUES`` values wait), merges each trial's consecutive results
    into one ``log_batch`` and makes the requests. A request that fails for a
    reason that may pass (a server that does not answer) puts the ops back
    in front and is tried again, after 1, 2, 4, ... 30 s; one refused for
    good is split by key, and only the refused keys are dropped.
    """

    def __init__(self, client: Any, experiment_id: str, runs: dict[str, str]) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.runs = runs                       # trial id -> run id (shared with the callback)
        self.queue: collections.deque[_Op] = collections.deque()
        self.cond = threading.Condition()
        self.waiting = 0                       # values queued, not yet written
        self.urgent = False
        self.busy = False
        self.draining = False                  # fit() waits for the writes at its end
        self.closing = False                   # fit() ended: the thread ends once all is written
        self.failing_since: float | None = None
        self.failure: BaseException | None = None
        self.n_failures = 0
        self.reported: list[str] = []          # messages for the driver to warn with
        self.refused: dict[str, set[str]] = {}  # run id -> keys MLflow refused for good
        self.upload_failures: dict[str, int] = {}  # run id -> failed uploads of its folder
        self.thread = threading.Thread(target=self._loop, name="fastasha-mlflow", daemon=True)
        self.thread.start()

    # ----------------------------------------------------------- driver side

    def put(self, op: _Op, urgent: bool = False) -> None:
        with self.cond:
            self.queue.append(op)
            self.waiting += op.n_values
            if urgent or self.waiting >= FLUSH_VALUES:
                self.urgent = True
                self.cond.notify()
            elif len(self.queue) == 1:
                # the first write waiting starts the thread's FLUSH_S clock (it sleeps
                # while the queue is empty; later writes join the batch without a wake-up)
                self.cond.notify()

    def idle(self) -> bool:
        return not self.queue and not self.busy

    def drain(self, timeout: float) -> bool:
        """Write everything now; wait until done or ``timeout`` s, or ``END_RETRY_S`` s of
        failures; True if nothing is left."""
        deadline = time.monotonic() + timeout
        with self.cond:
            self.urgent = self.draining = True
            self.cond.notify_all()
            started = time.monotonic()
            try:
                while not self.idle():
                    now = time.monotonic()
                    failing = self.failing_since is not None and \
                        now - max(self.failing_since, started) >= END_RETRY_S
                    if now >= deadline or failing:
                        return False
                    self.cond.wait(min(0.1, deadline - now))
                return True
            finally:
                self.draining = False

    def close(self, timeout: float) -> None:
        """End the thread once nothing is left to write (at once if nothing is); wait up to
        ``timeout`` s for it. What is still waiting goes on being tried until then."""
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.thread.join(timeout)

    def left(self) -> tuple[int, int]:
        """(values, other writes) still waiting."""
        with self.cond:
            other = sum(1 for op in self.queue if op.kind != "metrics")
            return self.waiting, other

    # ----------------------------------------------------------- thread side

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.queue:
                    if self.closing:
                        return
                    self.cond.wait()
                # the first write waiting starts the clock: what comes within FLUSH_S joins it
                deadline = time.monotonic() + FLUSH_S
                while not self.urgent and deadline > time.monotonic():
                    self.cond.wait(deadline - time.monotonic())
                ops = list(self.queue)
                self.queue.clear()
                self.urgent = False
                self.busy = True
            done = 0
            merged = self._merge(ops)
            try:
                for i, op in enumerate(merged):
                    self._do(op)
                    done = i + 1
                    with self.cond:
                        self.waiting -= op.n_values
            except Exception as err:   # noqa: BLE001 - retried; the driver is told
                self._failed(err, merged[done:])
            else:
                self._recovered()
            finally:
                with self.cond:
                    self.busy = False
                    self.cond.notify_all()

    @staticmethod
    def _merge(ops: Sequence[_Op]) -> list[_Op]:
        """``ops`` with each trial's consecutive results joined into one op (order kept per
        trial)."""
        out: list[_Op] = []
        open_metrics: dict[str, _Op] = {}
        for op in ops:
            if op.kind == "metrics":
                into = open_metrics.get(op.trial_id)
                if into is None:
                    into = _Op("metrics", op.trial_id, list(op.payload), op.n_values)
                    open_metrics[op.trial_id] = into
                    out.append(into)
                else:
                    into.payload.extend(op.payload)
                    into.n_values += op.n_values
            else:
                open_metrics.pop(op.trial_id, None)
                out.append(op)
        return out

    def _failed(self, err: BaseException, left: list[_Op]) -> None:
        with self.cond:
            for op in reversed(left):
                self.queue.appendleft(op)
            if self.failing_since is None:
                self.failing_since = time.monotonic()
                self.reported.append(
                    f"MLflowLoggerCallback: writing to MLflow failed ({type(err).__name__}: "
                    f"{err}); the sweep goes on, and the writes are retried")
            self.failure = err
            self.n_failures += 1
            # 1, 2, 4, ... 30 s between tries; 1 s at most while fit() waits at its end
            pause = min(2.0 ** (self.n_failures - 1), 30.0)
            deadline = time.monotonic() + pause
            while time.monotonic() < deadline:
                if self.draining:
                    deadline = min(deadline, time.monotonic() + 1.0)
                self.cond.wait(max(0.0, min(deadline - time.monotonic(), 0.2)))
            self.urgent = True

    def _recovered(self) -> None:
        if self.failing_since is not None:
            with self.cond:
                self.reported.append("MLflowLoggerCallback: writing to MLflow works again; "
                                     "nothing was lost")
                self.failing_since = None
                self.failure = None
                self.n_failures = 0

    # the requests

    def _do(self, op: _Op) -> None:
        """Make ``op``'s requests; one MLflow refuses for good is said and dropped.

        (Put back in front, a refused write would be refused at every try and hold up
        every later write of every trial.)
        """
        try:
            self._request(op)
        except Exception as err:   # noqa: BLE001 - sorted here
            if not _is_permanent(err):
                raise
            if op.kind == "end":
                self.runs.pop(op.trial_id, None)
            what = {"start": "the start of its run", "end": "the end of its run",
                    "params": "its parameters"}.get(op.kind, op.kind)
            with self.cond:
                self.reported.append(
                    f"MLflowLoggerCallback: MLflow refused {what} for trial {op.trial_id} "
                    f"({type(err).__name__}: {err}); left out"
                    + ("; its results are not logged to MLflow" if op.kind == "start" else ""))

    def _request(self, op: _Op) -> None:
        if op.kind == "start":
            self._start(op)
            return
        run_id = self.runs.get(op.trial_id)
        if run_id is None:         # its start was refused for good (warned)
            return
        if op.kind == "metrics":
            self._metrics(run_id, op.payload)
        elif op.kind == "params":
            self._log_params(run_id, op.payload)
        elif op.kind == "end":
            status, folder = op.payload
            if folder is not None and os.path.isdir(folder) and os.listdir(folder):
                self._upload(op.trial_id, run_id, folder)
            self.client.set_terminated(run_id, status=status)
            self.runs.pop(op.trial_id, None)     # (the callback's state keeps open runs only)
        else:
            raise RuntimeError(f"unreachable: an MLflow write of kind {op.kind!r}")

    def _upload(self, trial_id: str, run_id: str, folder: str) -> None:
        """Upload ``folder`` as the run's artifacts; give up, saying so, on the second
        failure that no retry mends (an artifact store that cannot be written, a missing
        client library such as boto3): the run still ends, and the writes behind it go on."""
        try:
            self.client.log_artifacts(run_id, folder)
        except Exception as err:   # noqa: BLE001 - sorted here
            if not _upload_refused(err):
                raise       # (a server that does not answer: tried again, with the rest)
            tries = self.upload_failures[run_id] = self.upload_failures.get(run_id, 0) + 1
            if tries < UPLOAD_TRIES:
                raise
            self.upload_failures.pop(run_id, None)
            with self.cond:
                self.reported.append(
                    f"MLflowLoggerCallback: uploading the folder {folder} of trial {trial_id} "
                    f"as the artifacts of MLflow run {run_id} failed {tries} times "
                    f"({type(err).__name__}: {err}); the run ends without them")

    def _start(self, op: _Op) -> None:
        run_name, tags, params = op.payload
        if op.trial_id not in self.runs:
            run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
            self.runs[op.trial_id] = run.info.run_id
        if params:
            self._log_params(self.runs[op.trial_id], params)

    def _log_params(self, run_id: str, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        self._batches(run_id, items, _PARAMS_PER_REQUEST, "params")

    def _metrics(self, run_id: str, rows: list[tuple[float, int, dict[str, float]]]) -> None:
        from mlflow.entities import Metric

        refused = self.refused.get(run_id, ())
        items = [Metric(key, value, timestamp, step)
                 for timestamp, step, values in rows
                 for key, value in values.items() if key not in refused]
        self._batches(run_id, items, _METRICS_PER_REQUEST, "metrics")

    def _batches(self, run_id: str, items: list, size: int, kind: str) -> None:
        for start in range(0, len(items), size):
            chunk = items[start:start + size]
            try:
                self._log(run_id, chunk, kind)
            except Exception as err:   # noqa: BLE001 - sorted below
                if not _is_permanent(err):
                    raise
                self._by_key(run_id, chunk, kind, err)

    def _log(self, run_id: str, chunk: list, kind: str) -> None:
        if kind == "metrics":
            self.client.log_batch(run_id, metrics=chunk)
        else:
            self.client.log_batch(run_id, params=chunk)

    def _by_key(self, run_id: str, chunk: list, kind: str, err: BaseException) -> None:
        """Log ``chunk`` key by key after MLflow refused it; drop the keys it refuses."""
        keys: dict[str, list] = {}
        for item in chunk:
            keys.setdefault(item.key, []).append(item)
        for key, items in keys.items():
            try:
                self._log(run_id, items, kind)
            except Exception as key_err:   # noqa: BLE001
                if not _is_permanent(key_err):
                    raise
                self.refused.setdefault(run_id, set()).add(key)
                with self.cond:
                    self.reported.append(
                        f"MLflowLoggerCallback: MLflow refused the {kind[:-1]} {key!r} of run "
                        f"{run_id} ({type(key_err).__name__}: {key_err}); it is left out")


def _is_permanent(err: BaseException) -> bool:
    code = getattr(err, "error_code", None)
    return isinstance(code, str) and code in _PERMANENT


def _upload_refused(err: BaseException) -> bool:
    """Whether an artifact upload failed for a reason that trying again will not mend
    (checked twice: a file that vanished during the upload is not such a reason)."""
    return _is_permanent(err) or isinstance(err, (
        ImportError, PermissionError, FileNotFoundError, NotADirectoryError, IsADirectoryError))


class MLflowLoggerCallback(LoggerCallback):
    """Log every trial as an MLflow run (Ray Tune's ``MLflowLoggerCallback``).

    One run per trial, named after the trial (tag ``trial_name``), in the
    experiment ``experiment_name``: the trial's flattened config as
    parameters (``{"model": {"depth": 3}}`` is ``model/depth``), each
    result's numeric values as metrics at step ``timesteps_total`` or
    ``training_iteration``, and status ``FINISHED`` or ``FAILED`` when the
    trial ends. A trial retried after a failure, or continued by
    ``Tuner.restore``, logs into the same run.

    Parameters
    ----------
    tracking_uri : str, optional
        Where MLflow keeps its runs: a server (``http://host:5000``), a
        database (``sqlite:///mlflow.db``) or a folder; by default MLflow's
        own (``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` with
        MLflow 3 and ``./mlruns`` with MLflow 2).
    registry_uri : str, optional
        The model registry's URI, passed to ``MlflowClient``.
    experiment_name : str, optional
        The MLflow experiment, created if missing. As in Ray, an existing
        experiment with the id ``$MLFLOW_EXPERIMENT_ID`` comes first; without
        a name, ``$MLFLOW_EXPERIMENT_NAME`` is used, and one of the two must
        be set.
    tags : dict, optional
        Tags of every run (``trial_name`` is added).
    tracking_token : str, optional
        Sets ``MLFLOW_TRACKING_TOKEN``, for a server that asks for one.
    save_artifact : bool, default=False
        Upload the trial's folder (``trial.path``: its checkpoints, and the
        log files of ``RunConfig(log_to_file=True)`` or of Ray's logger
        callbacks) as the run's artifacts when the trial ends.
    log_params_on_trial_end : bool, default=False
        Log the parameters when the trial ends instead of when it starts
        (Ray 2.9+).

    Raises
    ------
    ImportError
        If MLflow is not installed (``pip install mlflow-skinny``).
    ValueError
        From ``setup`` (when ``fit()`` starts, before any trial): no
        experiment given, or MLflow cannot reach the tracking URI.

    Notes
    -----
    The driver only queues each result: a background thread makes the
    requests, in batches (see the module docstring for how failures are
    handled). As with any callback that sees every result, each report of
    the objective waits for the driver while it is in use.

    Examples
    --------
    >>> from fastasha.air.integrations.mlflow import MLflowLoggerCallback
    >>> callback = MLflowLoggerCallback(experiment_name="lr_sweep",
    ...                                 tracking_uri="sqlite:///mlflow.db")  # doctest: +SKIP
    >>> tune.Tuner(objective, run_config=tune.RunConfig(callbacks=[callback]))  # doctest: +SKIP
    """

    def __init__(self, tracking_uri: str | None = None, *, registry_uri: str | None = None,
                 experiment_name: str | None = None, tags: dict | None = None,
                 tracking_token: str | None = None, save_artifact: bool = False,
                 log_params_on_trial_end: bool = False) -> None:
        self.tracking_uri = check_optional_str("tracking_uri", _fspath(tracking_uri))
        self.registry_uri = check_optional_str("registry_uri", _fspath(registry_uri))
        self.experiment_name = check_optional_str("experiment_name", experiment_name)
        self.tags = check_tags("tags", tags)
        self.tracking_token = check_optional_str("tracking_token", tracking_token)
        self.should_save_artifact = check_bool("save_artifact", save_artifact)
        self.log_params_on_trial_end = check_bool("log_params_on_trial_end",
                                                  log_params_on_trial_end)
        self._mlflow = _import_mlflow("MLflowLoggerCallback")
        self._writer: _Writer | None = None
        self._runs: dict[str, str] = {}            # trial id -> MLflow run id
        self._restored: dict[str, str] = {}
        self._warned = 0
        self.experiment_id: str | None = None

    # ---------------------------------------------------------------- setup

    def setup(self, *args: Any, **kwargs: Any) -> None:
        from mlflow.tracking import MlflowClient

        if self.tracking_token:
            os.environ["MLFLOW_TRACKING_TOKEN"] = self.tracking_token
        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        try:
            self.experiment_id = _resolve_experiment(client, None, self.experiment_name,
                                                     create=True, artifact_location=None)
        except ValueError:
            raise
        except Exception as err:
            raise ValueError(
                f"MLflowLoggerCallback could not open the MLflow tracking store "
                f"{client.tracking_uri!r} ({type(err).__name__}: {err}); check tracking_uri "
                "(a server http://host:port, sqlite:///file.db, ...) and that it is reachable"
            ) from err
        if self._writer is not None:        # a second fit() with the same callback
            self._finish(END_RETRY_S)
        self._runs = dict(self._restored)
        self._writer = _Writer(client, self.experiment_id, self._runs)
        _open_writers.add(self)

    # ----------------------------------------------------------- the hooks

    def log_trial_start(self, trial: Any) -> None:
        writer = self._check()
        tags = dict(self.tags or {})
        tags["trial_name"] = str(trial)
        params = None if self.log_params_on_trial_end else _params(trial.config)
        writer.put(_Op("start", trial.trial_id, (str(trial), tags, params)))

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        writer = self._check()
        values = _numeric(result)
        writer.put(_Op("metrics", trial.trial_id,
                       [(int(time.time() * 1000), _step(result), values)], len(values)))

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        writer = self._check()
        if self.log_params_on_trial_end:
            writer.put(_Op("params", trial.trial_id, _params(trial.config)))
        folder = trial.path if self.should_save_artifact else None
        writer.put(_Op("end", trial.trial_id, ("FAILED" if failed else "FINISHED", folder)),
                   urgent=True)

    def on_experiment_end(self, trials: Sequence, **info: Any) -> None:
        self._finish(END_RETRY_S + 30.0)

    def get_state(self) -> dict | None:
        """The MLflow run ids of the trials whose runs are open (for ``Tuner.restore``)."""
        return {"runs": dict(self._runs)} if self._runs else None

    def set_state(self, state: dict) -> None:
        runs = state.get("runs") if isinstance(state, dict) else None
        if isinstance(runs, dict):
            self._restored = {str(k): str(v) for k, v in runs.items()}

    # ------------------------------------------------------------ internals

    def _check(self) -> _Writer:
        """The writer, after passing on what it has to say (warnings, from the driver)."""
        writer = self._writer
        if writer is None:
            raise RuntimeError("MLflowLoggerCallback was not set up: fastasha calls its "
                               "setup() when fit() starts")
        if writer.reported:
            with writer.cond:
                messages, writer.reported = writer.reported, []
            for message in messages:
                warnings.warn(message, RuntimeWarning, stacklevel=user_stacklevel())
        if writer.waiting > MAX_WAITING:
            raise RuntimeError(
                f"MLflowLoggerCallback: {writer.waiting} values wait to be written to MLflow, "
                f"which has failed for {time.monotonic() - (writer.failing_since or 0):.0f} s "
                f"({writer.failure!r}): the sweep stops rather than hold more. Its results are "
                "saved; continue it with Tuner.restore once the tracking server works")
        return writer

    def _finish(self, timeout: float) -> None:
        """Wait for the writer to write everything; warn with what it could not."""
        writer = self._writer
        if writer is None:
            return
        done = writer.drain(timeout)
        # the thread ends once it has nothing left to write: at once after a drain that
        # wrote everything (each fit() starts a writer of its own)
        writer.close(1.0 if done else 0.0)
        self._check()
        if not done:
            values, other = writer.left()
            warnings.warn(
                f"MLflowLoggerCallback: {values} metric values and {other} other writes "
                f"(run starts, ends, parameters) could not be written to MLflow "
                f"({writer.failure!r}); they are tried until the process exits. The sweep's "
                "results are all in its experiment folder (tune.ResultGrid.from_path)",
                RuntimeWarning, stacklevel=user_stacklevel())


def _fspath(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


# callbacks whose writer may still hold writes when the interpreter exits
_open_writers: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _write_at_exit() -> None:
    for callback in list(_open_writers):
        writer = callback._writer
        if writer is not None and not writer.idle():
            writer.drain(10.0)


# ------------------------------------------------------------ setup_mlflow


class _NoopModule:
    """What ``setup_mlflow`` returns where it logs nothing: every call does nothing."""

    def __getattr__(self, name: str) -> Any:
        return _NoopModule()

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        return None


def _end_run(mlflow: ModuleType, client: Any, run_id: str) -> None:
    """End the run ``setup_mlflow`` started, when its trial has ended.

    This runs in the trial's thread, whose active run MLflow keeps per
    thread. If that is not the run (the objective called ``setup_mlflow``
    in a thread of its own, or ended the run itself), the run is ended
    through the client, if still running, and the next ``setup_mlflow`` of
    the thread that started it takes it off that thread's stack.
    """
    try:
        active = mlflow.active_run()
        if active is not None and active.info.run_id == run_id:
            mlflow.end_run()
        elif client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, status="FINISHED")
    except Exception as err:   # noqa: BLE001 - at a trial's end: say it, do not fail it
        warnings.warn(f"setup_mlflow: ending the MLflow run {run_id} failed "
                      f"({type(err).__name__}: {err})", RuntimeWarning, stacklevel=2)


def setup_mlflow(config: dict | None = None, tracking_uri: str | None = None,
                 registry_uri: str | None = None, experiment_id: str | None = None,
                 experiment_name: str | None = None, tracking_token: str | None = None,
                 artifact_location: str | None = None, run_name: str | None = None,
                 create_experiment_if_not_exists: bool = False, tags: dict | None = None,
                 rank_zero_only: bool = True) -> ModuleType:
    """Start an MLflow run for the trial, inside the objective (Ray's ``setup_mlflow``).

    Returns the ``mlflow`` module with the run active, so that the objective
    logs with MLflow's own functions::

        def objective(config):
            mlflow = setup_mlflow(config, experiment_name="sweep",
                                  tracking_uri="sqlite:///mlflow.db")
            for step in range(10):
                loss = ...
                mlflow.log_metrics({"loss": loss}, step=step)
                tune.report({"loss": loss})

    The config is logged as the run's parameters (flattened). The run ends
    when the trial ends (see the module docstring), or earlier with
    ``mlflow.end_run()``.

    Parameters
    ----------
    config : dict, optional
        The trial's config, logged as parameters.
    tracking_uri, registry_uri : str, optional
        As for :class:`MLflowLoggerCallback`.
    experiment_id : str, optional
        An existing experiment's id; it comes first when it exists (as in
        Ray). By default the trial's id, which is no experiment's.
    experiment_name : str, optional
        The experiment to log into; by default the trial's name, as in Ray.
        It must exist unless ``create_experiment_if_not_exists``.
    tracking_token : str, optional
        Sets ``MLFLOW_TRACKING_TOKEN``.
    artifact_location : str, optional
        Where a created experiment keeps its artifacts.
    run_name : str, optional
        The run's name; by default the experiment name, as in Ray.
    create_experiment_if_not_exists : bool, default=False
        Create the experiment ``experiment_name`` when it does not exist.
    tags : dict, optional
        The run's tags.
    rank_zero_only : bool, default=True
        Ray Train's option; ignored (a trial has one process).

    Returns
    -------
    module
        ``mlflow``, with the run active.

    Raises
    ------
    ImportError
        If MLflow is not installed (``pip install mlflow-skinny``).
    ValueError
        If the experiment does not exist and may not be created.
    """
    what = "setup_mlflow"
    config = check_config(config, what)
    tracking_uri = check_optional_str("tracking_uri", _fspath(tracking_uri))
    registry_uri = check_optional_str("registry_uri", _fspath(registry_uri))
    experiment_name = check_optional_str("experiment_name", experiment_name)
    tracking_token = check_optional_str("tracking_token", tracking_token)
    artifact_location = check_optional_str("artifact_location", _fspath(artifact_location))
    run_name = check_optional_str("run_name", run_name)
    tags = check_tags("tags", tags)
    create = check_bool("create_experiment_if_not_exists", create_experiment_if_not_exists)
    check_bool("rank_zero_only", rank_zero_only)
    if experiment_id is not None and not isinstance(experiment_id, (str, int)):
        raise TypeError(f"experiment_id must be a string, got {experiment_id!r} of type "
                        f"{type(experiment_id).__name__}")
    mlflow = _import_mlflow(what)
    from mlflow.tracking import MlflowClient

    context = get_context()
    experiment_id = experiment_id if experiment_id is not None else context.get_trial_id()
    experiment_name = experiment_name or context.get_trial_name()
    if tracking_token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = tracking_token
    if tracking_uri is not None:
        mlflow.set_tracking_uri(tracking_uri)
    if registry_uri is not None:
        mlflow.set_registry_uri(registry_uri)
    client = MlflowClient()
    found = _resolve_experiment(client, None if experiment_id is None else str(experiment_id),
                                experiment_name, create, artifact_location)
    while mlflow.active_run() is not None:
        # a run an earlier trial of this thread left open (Ray would return it, and log
        # this trial into it): it is that trial's, and ends here
        mlflow.end_run()
    run = mlflow.start_run(experiment_id=found, run_name=run_name or experiment_name,
                           tags=tags)
    if config:
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in _params(config).items()]
        for start in range(0, len(params), _PARAMS_PER_REQUEST):
            client.log_batch(run.info.run_id, params=params[start:start + _PARAMS_PER_REQUEST])
    at_trial_end(lambda: _end_run(mlflow, client, run.info.run_id))
    return mlflow


def __getattr__(name: str) -> Any:
    if name in ("mlflow_mixin", "MLflowTrainableMixin", "MLflowLogger"):
        raise AttributeError(
            f"fastasha has no {name} (Ray 1.x's): call setup_mlflow(config, ...) at the top "
            "of the objective instead, as Ray 2.x does, or pass MLflowLoggerCallback(...) in "
            "RunConfig(callbacks=[...])")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MLflowLoggerCallback", "setup_mlflow"]
