"""Where a sweep's configurations run: one after another in this process (the default), or as Ray
tasks, N at once on this machine (`--workers N`) or on a Ray cluster (`--address ADDR`,
`$RAY_ADDRESS`).

    engine = engine_for(EngineSettings(workers=2), plan)   # checks; starts Ray only when asked
    for planned, outcome in engine.run(job, todo, starting):
        ...                                                # outcomes as runs finish, anywhere
    engine.close()

`job(planned)` is `experiments.orchestration.launch`'s claim-and-run of one configuration: the
engine only decides where it is called, so the claims stay the guarantee that no configuration is
trained twice, whoever launched it.

A Ray task declares its resources (`num_cpus`: the machine's CPUs / N locally, `--cpus-per-run` on
a cluster; `num_gpus`: `--gpus-per-run`, a fraction lets several small runs share one GPU) and runs
with the threads of TensorFlow, XLA and BLAS set to its CPU share, so that N runs do not
oversubscribe the cores. A worker process or node that dies is retried (`max_retries`); the
retried run resumes from its checkpoint, which for a cluster must lie where every node reads it
(`RNNLAB_CHECKPOINT_DIR`, `--checkpoint-dir`). See docs/scale.md.
"""

from __future__ import annotations

import importlib.util
import math
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from datasets.errors import ConfigError

#: what a Ray task's environment carries over from the driver's, besides the thread settings
FORWARDED_PREFIXES = ("RNNLAB_", "MLFLOW_", "KERAS_", "TF_CPP_")
SETTLE_S = 30  # how long the driver waits for cancelled tasks' workers to stop


@dataclass(frozen=True)
class EngineSettings:
    """How `rnnlab sweep` runs its configurations (the CLI flags of the same names)."""

    workers: int | None = None        # configurations at once (local Ray; a cap on a cluster)
    address: str | None = None        # a Ray cluster ("HOST:PORT", "ray://HOST:PORT", "auto")
    cpus_per_run: float | None = None  # default: this machine's CPUs / workers, 1 on a cluster
    gpus_per_run: float = 0.0         # a fraction shares one GPU between several runs
    max_retries: int = 3              # Ray's retries of a task whose worker or node died
    verbose: bool = False             # the workers' own output (TensorFlow's lines) shown here

    @property
    def uses_ray(self) -> bool:
        return self.workers is not None or self.address is not None

    @classmethod
    def from_args(cls, args) -> EngineSettings:
        """From `rnnlab sweep`'s arguments; `$RAY_ADDRESS` stands for a missing `--address`."""
        return cls(workers=args.workers, address=args.address or os.environ.get("RAY_ADDRESS"),
                   cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run or 0.0,
                   max_retries=args.max_retries, verbose=getattr(args, "verbose", False))


def machine_cpus() -> int:
    """The CPUs this process may use (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check(settings: EngineSettings, configs: Iterable, source: str = "rnnlab sweep") -> None:
    """Refuse what Ray cannot run, before anything starts: a worker count below 1 or above this
    machine's CPUs, fractional resources out of range, `train.distribution` (a run on every
    local device) together with Ray, an `--address` nothing answers at."""
    if not settings.uses_ray:
        return
    if importlib.util.find_spec("ray") is None:
        raise ConfigError(source, "--workers" if settings.workers else "--address",
                          "needs Ray, which is not installed: pip install 'rnn-cell-lab[ray]'",
                          value=settings.workers or settings.address)
    if settings.workers is not None:
        if settings.workers < 1:
            raise ConfigError(source, "--workers", "must be at least 1", value=settings.workers)
        if settings.address is None and settings.workers > machine_cpus():
            raise ConfigError(source, "--workers", f"is more than this machine can hold: it has "
                              f"{machine_cpus()} CPUs", value=settings.workers,
                              valid=f"1 to {machine_cpus()}")
    if settings.cpus_per_run is not None and settings.cpus_per_run <= 0:
        raise ConfigError(source, "--cpus-per-run", "must be positive", value=settings.cpus_per_run)
    if settings.address is None and settings.cpus_per_run is not None \
            and settings.cpus_per_run * (settings.workers or 1) > machine_cpus():
        raise ConfigError(source, "--cpus-per-run", f"times --workers is more than this "
                          f"machine's {machine_cpus()} CPUs", value=settings.cpus_per_run)
    gpus = settings.gpus_per_run
    if gpus < 0 or (gpus > 1 and gpus != int(gpus)):
        raise ConfigError(source, "--gpus-per-run", "must be a fraction in (0, 1] or a whole "
                          "number", value=gpus)
    if settings.max_retries < 0:
        raise ConfigError(source, "--max-retries", "must be 0 or more", value=settings.max_retries)
    flag = "--workers" if settings.workers is not None else "--address"
    for config in configs:
        if config.train.distribution:
            raise ConfigError(source, "train.distribution", f"trains one run on every local "
                              f"device, which {flag} shares between runs: use one or the other",
                              value=config.train.distribution, valid="null with " + flag)
    if settings.address is not None:
        _check_reachable(settings.address, source)


def _check_reachable(address: str, source: str, timeout_s: float = 5.0) -> None:
    """A Ray head answers at HOST:PORT within `timeout_s` ("auto" is left to Ray)."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(source, "--address", "must be HOST:PORT (a Ray head's GCS port, "
                          "6379 by default), ray://HOST:PORT or auto", value=address)
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ConfigError(source, "--address", f"does not answer ({err.strerror or err}); "
                          "nothing was trained. Start the cluster (`ray start --head`) or fix "
                          "--address / $RAY_ADDRESS", value=address) from None


def engine_for(settings: EngineSettings, configs: Iterable = (),
               source: str = "rnnlab sweep") -> Local | RayEngine:
    """The engine `settings` ask for, checked: `Local` without --workers / --address (Ray is then
    neither imported nor started), else a connected `RayEngine`."""
    configs = list(configs)
    check(settings, configs, source)
    return RayEngine(settings, source) if settings.uses_ray else Local()


class Local:
    """Today's engine: each configuration in this process, one after another."""

    description = "this process"
    stopped: tuple = ()  # a stopped run ends KILLED in this process itself

    def run(self, job: Callable, todo: list, starting: Callable) -> Iterator[tuple]:
        for planned in todo:
            starting(planned)
            yield planned, job(planned)

    def close(self) -> None:
        pass


class RayEngine:
    """Configurations as Ray tasks: a local Ray instance of this machine's CPUs (`workers` at
    once), or the cluster at `address`. `run` yields (planned, outcome) as tasks end; a task that
    failed for good (its worker died more than `max_retries` times) yields the exception."""

    def __init__(self, settings: EngineSettings, source: str = "rnnlab sweep"):
        import ray

        self.settings = settings
        self.stopped: list = []  # configurations whose tasks were cancelled when the driver stopped
        os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
        if settings.address is None:
            cpus = machine_cpus()
            self.cpus = settings.cpus_per_run or max(cpus // settings.workers, 1)
            # "local": a new instance of our own, even where `ray start` left one to connect to
            ray.init(address="local", num_cpus=cpus, include_dashboard=False,
                     configure_logging=False,
                     object_store_memory=128 * 2**20, log_to_driver=settings.verbose)
        else:
            self.cpus = settings.cpus_per_run or 1
            try:
                ray.init(address=settings.address, configure_logging=False,
                         log_to_driver=settings.verbose)
            except (ConnectionError, RuntimeError) as err:
                raise ConfigError(source, "--address", f"is no Ray cluster ({err})",
                                  value=settings.address) from None
            self._check_capacity(ray, source)
        self.description = (f"Ray, {settings.workers or 'as many as fit'} at once, "
                            f"{self.cpus:g} CPU(s) per run" if settings.address is None else
                            f"the Ray cluster at {settings.address}, {self.cpus:g} CPU(s) per run")

    def _check_capacity(self, ray, source: str) -> None:
        """On a cluster: some node holds one run's CPUs and GPUs, and `workers` runs fit."""
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        fits = [math.floor(n.get("CPU", 0) / self.cpus) for n in nodes
                if self.settings.gpus_per_run <= n.get("GPU", 0)]
        capacity = sum(fits)
        if capacity < (self.settings.workers or 1):
            ray.shutdown()
            raise ConfigError(source, "--workers" if self.settings.workers else "--cpus-per-run",
                              f"is more than the cluster can hold: {capacity} runs of "
                              f"{self.cpus:g} CPU(s), {self.settings.gpus_per_run:g} GPU(s) fit",
                              value=self.settings.workers or self.cpus)

    def task_env(self) -> dict[str, str]:
        """A task's environment: the driver's RNNLAB_/MLFLOW_/KERAS_ settings (the same store,
        checkpoint folder, data), threads limited to the task's CPU share and the compile cache
        (`compile_cache_env`; on a cluster only where `$RNNLAB_COMPILE_CACHE` names a folder,
        since the default lies in the driver's home)."""
        from experiments.recording import store

        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_PREFIXES)}
        env["MLFLOW_TRACKING_URI"] = store.tracking_uri()  # as the driver resolved it
        env["RNNLAB_MLFLOW_CONFIG"] = str(store.settings_path().resolve())
        env.update(thread_env(self.cpus))
        if self.settings.address is None or "RNNLAB_COMPILE_CACHE" in os.environ:
            env.update(compile_cache_env())  # on a cluster only a folder the user chose
        if 0 < self.settings.gpus_per_run < 1:  # share the GPU: take memory as needed
            env.update(TF_FORCE_GPU_ALLOW_GROWTH="true", XLA_PYTHON_CLIENT_PREALLOCATE="false")
        return env

    def run(self, job: Callable, todo: list, starting: Callable) -> Iterator[tuple]:
        import ray

        from experiments.guards import as_stopped

        remote = ray.remote(run_configuration).options(
            num_cpus=self.cpus, num_gpus=self.settings.gpus_per_run,
            max_retries=self.settings.max_retries, retry_exceptions=False,
            runtime_env={"env_vars": self.task_env()})
        waiting, running = list(todo), {}
        limit = self.settings.workers or len(waiting)
        try:
            while waiting or running:
                while waiting and len(running) < limit:
                    planned = waiting.pop(0)
                    starting(planned)
                    running[remote.remote(job, planned)] = planned
                [ready], _ = ray.wait(list(running), num_returns=1)
                planned = running.pop(ready)
                try:
                    yield planned, ray.get(ready)
                except (ray.exceptions.RayError, ConnectionError) as err:
                    yield planned, err
        except KeyboardInterrupt as err:  # Ctrl-C / SIGTERM, perhaps landed inside Ray's wait
            raise as_stopped(err) from None
        finally:  # stopped early (Ctrl-C, SIGTERM, an error): the tasks' workers are stopped,
            # and the driver ends their runs KILLED (`stopped`)
            self.stopped = list(running.values())
            for ref in running:
                ray.cancel(ref, force=True)
            if running:
                ray.wait(list(running), num_returns=len(running), timeout=SETTLE_S)

    def close(self) -> None:
        import ray

        ray.shutdown()


def thread_env(cpus: float) -> dict[str, str]:
    """Environment variables that keep TensorFlow (intra/inter-op pools), XLA on the CPU, OpenMP
    and BLAS to `cpus` threads; read when a worker process starts, before TensorFlow does."""
    n = str(max(math.floor(cpus), 1))
    env = {name: n for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}
    xla = os.environ.get("XLA_FLAGS", "")
    if n == "1":
        xla = f"{xla} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1".strip()
    if xla:
        env["XLA_FLAGS"] = xla
    return env


def compile_cache_env(environ: dict | None = None) -> dict[str, str]:
    """Environment variables that keep JAX's compiled programs on disk, in
    `$RNNLAB_COMPILE_CACHE`/jax (default ~/.cache/rnnlab/compile; `off`: none). Under
    KERAS_BACKEND=jax a run whose programs another run already compiled (another seed of its
    configuration, a resumed run, another worker's) loads them instead of compiling them again:
    the same programs, so the same results (tests/experiments/test_jit.py;
    benchmarks/study_throughput.md measures the gain). TensorFlow's own cache
    (`--tf_xla_persistent_cache_directory`) is not used: it keys a program by its function's
    name, which differs from one run to the next in a process, so a sweep never hits it.
    Read when JAX starts, so set before a process's first operation."""
    environ = os.environ if environ is None else environ
    folder = environ.get("RNNLAB_COMPILE_CACHE", "~/.cache/rnnlab/compile")
    if folder.lower() in ("off", "none", "0", "false", ""):
        return {}
    folder = os.path.abspath(os.path.expanduser(folder))
    defaults = {"JAX_COMPILATION_CACHE_DIR": f"{folder}/jax",
                # every program, however small or quick to compile (JAX's defaults skip those)
                "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}
    return {name: environ.get(name, value) for name, value in defaults.items()}


def run_configuration(job: Callable, planned):
    """A Ray task: one configuration, claimed and run by `job` in this worker."""
    return job(planned)
