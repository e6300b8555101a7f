"""Ray Tune's Weights & Biases integration: ``from fastasha.air.integrations.wandb import ...``.

Ray 2.x's ``ray.air.integrations.wandb`` (and Ray 1.x's
``ray.tune.integration.wandb``, here ``fastasha.tune.integration.wandb``)
with the same names and arguments:

* :class:`WandbLoggerCallback`, passed in ``RunConfig(callbacks=[...])``,
  logs every trial as a W&B run: run id the trial's id, name the trial's
  name, group the experiment's name, the trial's config as the run's
  config, and every result's numbers (nested dicts flattened, ``a/b``) with
  ``run.log``.
* :func:`setup_wandb`, called inside the objective, starts a W&B run for
  the trial in the trial's process and returns it.

Both need ``wandb`` 0.19.10 or newer (``pip install wandb``; in a clone of
fastasha, ``pip install -e ".[wandb]"``). ``WANDB_MODE=offline`` writes the
runs to disk (``wandb sync`` uploads them later).

How the callback logs: Ray starts one actor process per trial, so that
``wandb.init`` and ``run.finish`` (seconds each, online) never hold up its
loop. fastasha starts one thread per running trial in the driver's process
instead, each owning its trial's run (W&B's several runs per process,
``reinit="create_new"``); the driver only queues results for it. The heavy
work happens in W&B's own service process either way. ``fit()`` returns
once every run has finished uploading, or after ``upload_timeout`` seconds
(then with a warning naming the runs still uploading; W&B finishes them
when the process exits).

Where fastasha differs from Ray (2.53):

* A trial that ends ``ERROR`` ends its run with exit code 1 (W&B shows it
  failed); Ray ends every run alike.
* A failure of W&B (``wandb.init`` refused, a result it cannot log) never
  ends the sweep, as in Ray, whose logging actors die on their own; here
  each is said in a ``RuntimeWarning``, with the number of results a run
  that could not start did not get.
* The run's output capture is off by default (``settings=wandb.Settings(
  console="off")``): the runs share the driver's process, whose output is
  not theirs. Pass ``settings=...`` to choose.
* The runs' files go to each trial's folder (``<trial folder>/wandb``), as
  in Ray, where the logging actor works in the trial's folder; pass
  ``dir=...`` to put them elsewhere.
* The config is sent to W&B again only when a result's ``config`` differs
  from the last one sent (Ray sends it with every result).
* ``setup_wandb`` finishes the run it started once the trial's objective
  has returned, raised or been stopped, before the trial counts as ended
  (Ray's runs finish when the trial's process exits; fastasha's trial
  processes run several trials and leave without running ``atexit``
  handlers). The objective need not finish it itself.
  ``rank_zero_only`` is accepted and ignored (a trial has one process).
* Ray 1.x's ``wandb_mixin`` and ``WandbTrainableMixin`` are not provided;
  ``setup_wandb`` replaces them (as in Ray 2.x).
"""

from __future__ import annotations

import atexit
import numbers
import os
import queue
import threading
import time
import warnings
import weakref
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from ..._rows import flatten
from ..._session import get_context
from ..._validation import check_bool, check_positive, user_stacklevel
from ...logger import LoggerCallback
from ._tracking import at_trial_end, check_config, check_optional_str, experiment_name, missing

# Ray's environment variables (ray.air.integrations.wandb)
WANDB_ENV_VAR = "WANDB_API_KEY"
WANDB_PROJECT_ENV_VAR = "WANDB_PROJECT_NAME"
WANDB_GROUP_ENV_VAR = "WANDB_GROUP_NAME"
# Ray's default upload timeout (ray.train's DEFAULT_SYNC_TIMEOUT)
DEFAULT_UPLOAD_TIMEOUT = 1800
# the oldest wandb that runs several runs in one process (reinit="create_new")
MIN_VERSION = (0, 19, 10)

_END = "end"
_RESULT = "result"
_CHECKPOINT = "checkpoint"


def _import_wandb(what: str) -> ModuleType:
    try:
        import wandb
    except ImportError as err:
        raise missing("Weights & Biases", "wandb", "wandb", what, err) from err
    return wandb


def _version(wandb: ModuleType) -> tuple[int, ...]:
    parts = []
    for part in str(getattr(wandb, "__version__", "0")).split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _offline(kwargs: Mapping) -> bool:
    """Whether the runs stay on this machine (no API key needed)."""
    mode = kwargs.get("mode") or os.environ.get("WANDB_MODE", "")
    return str(mode).lower() in ("offline", "disabled", "dryrun") or \
        os.environ.get("WANDB_DISABLED", "").lower() in ("true", "1")


def _set_api_key(wandb: ModuleType, api_key_file: str | None, api_key: str | None,
                 offline: bool) -> None:
    """Put the API key in ``WANDB_API_KEY`` (as Ray does); a clear error when there is none."""
    if api_key_file:
        if api_key:
            raise ValueError("pass either api_key or api_key_file, not both")
        path = os.path.expanduser(api_key_file)
        try:
            with open(path) as f:
                api_key = f.readline().strip()
        except OSError as err:
            raise ValueError(f"the W&B API key file {path!r} cannot be read: {err}") from err
    if api_key:
        os.environ[WANDB_ENV_VAR] = api_key
        return
    if offline or os.environ.get(WANDB_ENV_VAR):
        return
    try:
        if wandb.api.api_key:       # `wandb login` stored one
            return
    except Exception:   # noqa: BLE001 - any failure to find one: say how to give one
        pass
    raise ValueError(
        f"no W&B API key: set the {WANDB_ENV_VAR} environment variable, pass api_key or "
        "api_key_file, run `wandb login`, or log offline with WANDB_MODE=offline")


def _is_allowed(value: Any, wb_value: type | None) -> bool:
    """Whether W&B can log ``value`` as Ray lets it: a number, a W&B object, a
    one-element numeric array, or a non-empty sequence of W&B objects."""
    if isinstance(value, bool):
        return True
    if isinstance(value, numbers.Number):
        return True
    if wb_value is not None and isinstance(value, wb_value):
        return True
    size = getattr(value, "size", None)
    if size == 1 and hasattr(value, "item"):
        return isinstance(value.item(), numbers.Number)
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and value \
            and wb_value is not None:
        return isinstance(value[0], wb_value)
    return False


def _clean(value: Any) -> Any:
    """``value`` with what W&B cannot store as config replaced by its text (as Ray does)."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_clean(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if value is None or isinstance(value, (str, bool, numbers.Number)):
        return value
    return str(value)


class _TrialLog(threading.Thread):
    """The thread that owns one trial's W&B run: ``wandb.init``, ``run.log``,
    artifacts, ``run.finish``, in the order the driver queued them."""

    def __init__(self, wandb: ModuleType, init_kwargs: dict, exclude: frozenset,
                 to_config: frozenset, log_config: bool, messages: list) -> None:
        super().__init__(name=f"fastasha-wandb-{init_kwargs.get('id')}", daemon=True)
        self.wandb = wandb
        self.init_kwargs = init_kwargs
        self.exclude = exclude
        self.to_config = to_config
        self.log_config = log_config
        self.messages = messages
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.ended = False          # the driver has queued the end
        self.last_config: dict | None = None
        self.wb_run: Any = None
        try:
            from wandb.sdk.data_types.base_types.wb_value import WBValue
        except ImportError:
            WBValue = None        # noqa: N806
        self.wb_value = WBValue

    def run(self) -> None:   # noqa: D102 - threading's name
        name = self.init_kwargs.get("name")
        try:
            self.wb_run = self.wandb.init(**self.init_kwargs)
        except Exception as err:   # noqa: BLE001 - said; the sweep goes on
            n_results = self._discard()
            self.messages.append(
                f"WandbLoggerCallback: wandb.init failed for trial {name} "
                f"({type(err).__name__}: {err}); its {n_results} results were not logged")
            return
        failed = False
        while True:
            kind, content = self.queue.get()
            if kind == _END:
                failed = content
                break
            try:
                if kind == _RESULT:
                    self._log(content)
                elif kind == _CHECKPOINT:
                    self._upload(content)
            except Exception as err:   # noqa: BLE001 - a missing point, not a lost sweep
                self.messages.append(f"WandbLoggerCallback: logging to W&B failed for trial "
                                     f"{name} ({type(err).__name__}: {err})")
        try:
            self.wb_run.finish(exit_code=1 if failed else 0)
        except Exception as err:   # noqa: BLE001
            self.messages.append(f"WandbLoggerCallback: finishing the W&B run of trial "
                                 f"{name} failed ({type(err).__name__}: {err})")

    def _discard(self) -> int:
        """Take what the driver queues until the end (a run that never started); count the
        results."""
        n_results = 0
        while True:
            kind, _ = self.queue.get()
            if kind == _END:
                return n_results
            n_results += kind == _RESULT

    def _log(self, result: dict) -> None:
        config_update = dict(result.get("config") or {})
        log = {}
        for key, value in flatten(result).items():
            head = key.split("/", 1)[0]
            if key in self.to_config or head in self.to_config:
                config_update[key] = value
            elif key in self.exclude or head in self.exclude:
                continue
            elif _is_allowed(value, self.wb_value):
                log[key] = value
        config_update.pop("callbacks", None)
        config_update = _clean(config_update)
        if config_update != self.last_config:
            self.wb_run.config.update(config_update, allow_val_change=True)
            self.last_config = config_update
        self.wb_run.log(log)

    def _upload(self, path: str) -> None:
        artifact = self.wandb.Artifact(name=f"checkpoint_{self.init_kwargs.get('name')}",
                                       type="model")
        artifact.add_dir(path)
        self.wb_run.log_artifact(artifact)


class WandbLoggerCallback(LoggerCallback):
    """Log every trial as a Weights & Biases run (Ray Tune's ``WandbLoggerCallback``).

    Parameters
    ----------
    project : str, optional
        The W&B project; required, here or in ``$WANDB_PROJECT_NAME``.
    group : str, optional
        The runs' group; by default ``$WANDB_GROUP_NAME``, else the
        experiment's name.
    api_key_file : str, optional
        A file whose first line is the W&B API key.
    api_key : str, optional
        The API key. Without either, ``$WANDB_API_KEY`` or the key of
        ``wandb login`` is used; none is needed offline.
    excludes : list of str, optional
        Result keys not to log (a key leaves out its nested keys too).
    log_config : bool, default=False
        Also log the result's ``config`` as values (Ray's option for
        configs that change during a trial).
    upload_checkpoints : bool, default=False
        Upload each checkpoint a trial saves as a W&B artifact.
    save_checkpoints : bool, default=False
        Ray's older name of ``upload_checkpoints`` (deprecated there).
    upload_timeout : float, default=1800
        How long ``fit()`` waits, at its end, for the runs to finish
        uploading.
    **kwargs
        Passed to ``wandb.init`` (``entity``, ``tags``, ``mode``, ``dir``,
        ``settings``, ...); they override the callback's own choices.

    Raises
    ------
    ImportError
        If ``wandb`` is not installed (``pip install wandb``).
    ValueError
        From ``setup`` (when ``fit()`` starts): no project, or no API key
        where one is needed.

    Examples
    --------
    >>> from fastasha.air.integrations.wandb import WandbLoggerCallback
    >>> callback = WandbLoggerCallback(project="lr_sweep")       # doctest: +SKIP
    >>> tune.Tuner(objective, run_config=tune.RunConfig(callbacks=[callback]))  # doctest: +SKIP
    """

    # Ray's lists: result keys not logged, and those that go into the run's config
    _exclude_results = ("done", "should_checkpoint")
    _config_results = ("trial_id", "experiment_tag", "node_ip", "experiment_id", "hostname",
                       "pid", "date")

    def __init__(self, project: str | None = None, group: str | None = None,
                 api_key_file: str | None = None, api_key: str | None = None,
                 excludes: list[str] | None = None, log_config: bool = False,
                 upload_checkpoints: bool = False, save_checkpoints: bool = False,
                 upload_timeout: float = DEFAULT_UPLOAD_TIMEOUT, **kwargs: Any) -> None:
        self.project = check_optional_str("project", project)
        self.group = check_optional_str("group", group)
        self.api_key_path = check_optional_str(
            "api_key_file", os.fspath(api_key_file) if isinstance(api_key_file, os.PathLike)
            else api_key_file)
        self.api_key = check_optional_str("api_key", api_key)
        if excludes is not None and (isinstance(excludes, str) or not isinstance(
                excludes, (list, tuple, set, frozenset)) or
                not all(isinstance(e, str) for e in excludes)):
            raise TypeError(f"excludes must be a list of result keys (strings), got "
                            f"{excludes!r}; e.g. excludes=['time_this_iter_s']")
        self.excludes = list(excludes or [])
        self.log_config = check_bool("log_config", log_config)
        self.upload_checkpoints = check_bool("upload_checkpoints", upload_checkpoints)
        if check_bool("save_checkpoints", save_checkpoints):
            warnings.warn("save_checkpoints is Ray's deprecated name: pass "
                          "upload_checkpoints=True", DeprecationWarning, stacklevel=2)
            self.upload_checkpoints = True
        self.upload_timeout = check_positive(
            "upload_timeout", upload_timeout,
            hint="; it is the number of seconds fit() waits for the uploads at its end")
        self.kwargs = kwargs
        self._wandb = _import_wandb("WandbLoggerCallback")
        if _version(self._wandb) < MIN_VERSION:
            raise ImportError(
                f"WandbLoggerCallback needs wandb {'.'.join(map(str, MIN_VERSION))} or newer "
                f"(several runs in one process), found {self._wandb.__version__}: "
                "pip install -U wandb")
        self._logs: dict[str, _TrialLog] = {}
        self._messages: list[str] = []
        self._all: list[_TrialLog] = []      # every thread of this fit(), ended or not

    def setup(self, *args: Any, **kwargs: Any) -> None:
        _set_api_key(self._wandb, self.api_key_path, self.api_key, _offline(self.kwargs))
        self.project = self.project or os.environ.get(WANDB_PROJECT_ENV_VAR)
        if not self.project:
            raise ValueError(f"WandbLoggerCallback needs a W&B project: pass "
                             f"project='...' or set {WANDB_PROJECT_ENV_VAR}")
        if not self.group and os.environ.get(WANDB_GROUP_ENV_VAR):
            self.group = os.environ[WANDB_GROUP_ENV_VAR]
        self._wait(self.upload_timeout)      # a second fit() with the same callback
        self._all = []
        _open_callbacks.add(self)

    # ------------------------------------------------------------- the hooks

    def log_trial_start(self, trial: Any) -> None:
        self._say()
        log = self._logs.get(trial.trial_id)
        if log is not None and log.is_alive() and not log.ended:
            return          # a retry after a failure: the same run goes on
        config = dict(trial.config or {})
        config.pop("callbacks", None)
        exclude = set(self._exclude_results) | set(self.excludes)
        if not self.log_config:
            exclude.add("config")
        init_kwargs: dict[str, Any] = {
            "id": trial.trial_id, "name": str(trial), "resume": "allow",
            "reinit": "create_new", "allow_val_change": True,
            "group": self.group or experiment_name(trial), "project": self.project,
            "config": _clean(config), "dir": trial.path,
        }
        if "settings" not in self.kwargs:
            init_kwargs["settings"] = self._wandb.Settings(console="off")
        init_kwargs.update(self.kwargs)
        log = _TrialLog(self._wandb, init_kwargs, frozenset(exclude),
                        frozenset(self._config_results), self.log_config, self._messages)
        self._logs[trial.trial_id] = log
        self._all.append(log)
        log.start()

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        log = self._logs.get(trial.trial_id)
        if log is None or log.ended:
            self.log_trial_start(trial)
            log = self._logs[trial.trial_id]
        log.queue.put((_RESULT, result))

    def log_trial_save(self, trial: Any) -> None:
        if not self.upload_checkpoints:
            return
        log = self._logs.get(trial.trial_id)
        checkpoint = trial.checkpoint
        if log is not None and not log.ended and checkpoint is not None:
            log.queue.put((_CHECKPOINT, checkpoint.path))

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        self._say()
        log = self._logs.pop(trial.trial_id, None)
        if log is not None and not log.ended:
            log.ended = True
            log.queue.put((_END, failed))

    def on_experiment_end(self, trials: Sequence, **info: Any) -> None:
        for trial_id in list(self._logs):
            log = self._logs.pop(trial_id)
            if not log.ended:
                log.ended = True
                log.queue.put((_END, False))
        self._wait(self.upload_timeout)

    # ------------------------------------------------------------ internals

    def _say(self) -> None:
        """Warn, from the driver's thread, with what the runs' threads have to say."""
        while self._messages:
            warnings.warn(self._messages.pop(0), RuntimeWarning, stacklevel=user_stacklevel())

    def _wait(self, timeout: float) -> None:
        """Wait for the runs whose trials ended to finish uploading, ``timeout`` s at most."""
        deadline = time.monotonic() + timeout
        for log in self._all:
            if log.ended:
                log.join(max(0.0, deadline - time.monotonic()))
        self._say()
        late = [log.init_kwargs.get("name") for log in self._all if log.ended and log.is_alive()]
        if late:
            warnings.warn(
                f"WandbLoggerCallback: the W&B runs of trials {late} were still uploading after "
                f"upload_timeout={self.upload_timeout} s; W&B goes on when fit() returns, and "
                "finishes them before the process exits", RuntimeWarning,
                stacklevel=user_stacklevel())
        self._all = [log for log in self._all if log.is_alive()]


# callbacks whose runs may still be open when the interpreter exits
_open_callbacks: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _finish_at_exit() -> None:
    for callback in list(_open_callbacks):
        for log in list(callback._logs.values()):
            if not log.ended:
                log.ended = True
                log.queue.put((_END, True))      # the sweep stopped (Ctrl-C, an error)
        for log in callback._all:
            log.join(30.0)


# ------------------------------------------------------------- setup_wandb


def _finish(run: Any) -> None:
    try:
        run.finish()
    except Exception as err:   # noqa: BLE001 - at a trial's end: say it, do not fail it
        warnings.warn(f"setup_wandb: finishing the W&B run failed ({type(err).__name__}: "
                      f"{err})", RuntimeWarning, stacklevel=2)


def setup_wandb(config: dict | None = None, api_key: str | None = None,
                api_key_file: str | None = None, rank_zero_only: bool = True,
                **kwargs: Any) -> Any:
    """Start a W&B run for the trial, inside the objective (Ray's ``setup_wandb``).

    Returns the run, to log with::

        def objective(config):
            run = setup_wandb(config, project="sweep")
            for step in range(10):
                loss = ...
                run.log({"loss": loss})
                tune.report({"loss": loss})

    By default the run's id is the trial's id, its name the trial's name and
    its group the experiment's name; ``kwargs`` (passed to ``wandb.init``)
    override them. As in Ray, a ``"wandb"`` entry of ``config`` holds more
    ``wandb.init`` arguments (and may hold ``api_key`` or ``api_key_file``);
    the rest of ``config`` is the run's config. The run finishes when the
    trial ends (see the module docstring), or earlier with ``run.finish()``.

    Parameters
    ----------
    config : dict, optional
        The trial's config.
    api_key, api_key_file : str, optional
        The W&B API key, or a file holding it (not needed offline).
    rank_zero_only : bool, default=True
        Ray Train's option; ignored (a trial has one process).
    **kwargs
        Passed to ``wandb.init``.

    Returns
    -------
    wandb.Run

    Raises
    ------
    ImportError
        If ``wandb`` is not installed (``pip install wandb``).
    ValueError
        If no API key is found where one is needed.
    """
    what = "setup_wandb"
    config = check_config(config, what)
    check_bool("rank_zero_only", rank_zero_only)
    check_optional_str("api_key", api_key)
    check_optional_str("api_key_file", api_key_file)
    wandb = _import_wandb(what)
    wandb_config = config.pop("wandb", None) or {}
    if not isinstance(wandb_config, Mapping):
        raise TypeError(f"config['wandb'] holds wandb.init arguments as a dict, got "
                        f"{wandb_config!r}")
    wandb_config = dict(wandb_config)
    api_key_file = wandb_config.pop("api_key_file", None) or api_key_file
    api_key = wandb_config.pop("api_key", None) or api_key
    init_kwargs: dict[str, Any] = {**wandb_config, **kwargs}
    _set_api_key(wandb, api_key_file, api_key, _offline(init_kwargs))
    context = get_context()
    project = init_kwargs.get("project") or os.environ.get(WANDB_PROJECT_ENV_VAR)
    group = init_kwargs.get("group") or os.environ.get(WANDB_GROUP_ENV_VAR) or \
        context.get_experiment_name()
    defaults: dict[str, Any] = {
        "id": context.get_trial_id(), "name": context.get_trial_name(), "group": group,
        "project": project, "resume": "allow", "reinit": "finish_previous",
        "allow_val_change": True, "config": _clean(config),
    }
    defaults.update({k: v for k, v in init_kwargs.items() if k not in ("project", "group")})
    run = wandb.init(**defaults)
    at_trial_end(lambda: _finish(run))
    return run


def __getattr__(name: str) -> Any:
    if name in ("wandb_mixin", "WandbTrainableMixin", "WandbLogger"):
        raise AttributeError(
            f"fastasha has no {name} (Ray 1.x's): call setup_wandb(config, ...) at the top "
            "of the objective instead, as Ray 2.x does, or pass WandbLoggerCallback(...) in "
            "RunConfig(callbacks=[...])")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["WandbLoggerCallback", "setup_wandb"]
