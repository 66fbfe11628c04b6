"""The `rnnlab` command line: parses the arguments and dispatches each command to the room that
does it (one run: `experiments.run`; orchestration: sweeps, tuning; analysis: reports; serving:
predict, the MLflow UI). What it prints goes through `experiments.console`."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import os
import re
import sys

from experiments import console


def cmd_cells(args: argparse.Namespace) -> int:
    from experiments.tasks.settings import cell_catalog  # plain data: no Keras to print text

    for cell, summary, equations in cell_catalog().docs():
        also = f" (also {', '.join(cell.aliases)})" if cell.aliases else ""
        print(f"{cell.name}{also}: {cell.cls}\n  {summary}")
        print("".join(f"    {line}\n" for line in equations))
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    """Every task with its one-line description and, for the generated ones, its goal."""
    import datasets
    from experiments import goals

    for name in datasets.names():
        line = f"{name:15s} {goals.task_description(name)}"
        spec = goals.spec(name, {})
        goal = goals.GoalView.of(spec) if spec is not None else None
        if goal is not None:
            line += (f"\n{'':15s} metric {goal.metric} ({goal.better}); chance "
                     f"{goal.chance_text}; solved when {goal.solved_when} (at T = "
                     f"{spec.sequence_length}; set data.length)")
        print(line)
    print("\n`rnnlab data info <task>` shows sizes, vocabularies and where the files are looked for.")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    import datasets
    from experiments.config import Config

    for item in args.set:
        if not item.startswith("data."):
            raise ValueError(f"--set {item!r}: `rnnlab data info` takes data.key=value only")
    config = Config.from_dict({"data": {"name": args.name}}, source="rnnlab data info")
    config = _with_sets(config, args.set)
    info = datasets.info(config.data)
    items = info.items() if isinstance(info, dict) else vars(info).items()
    for key, value in items:
        print(f"{key.replace('_', ' '):18s} {console.readable(value)}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from experiments.config import Config, load_config, validate_names

    # strict: a setting the cell does not have is an error here (a sweep drops it instead)
    config = load_config(args.config, strict=True) if args.config else Config()
    verbose = ["train.verbose=2"] if config.train.verbose == 0 else []  # Keras's line per epoch
    config = config.with_overrides([f"data.name={args.task}", f"model.cell={args.cell}", *verbose,
                                    *_distribution_set(args), *args.set], strict=True)
    validate_names(config, "rnnlab run")
    from experiments.guards import Diverged, Stopped, stop_on_signals
    from experiments.recording.store import TrackingUnavailable
    from experiments.run import run

    try:
        with stop_on_signals():
            result = run(config)
    except Stopped as stop:
        print(f"rnnlab run: {stop}; the run is marked KILLED (a re-run resumes from its last "
              "completed epoch)", file=sys.stderr)
        return stop.exit_code
    except (Diverged, TrackingUnavailable) as err:
        print(f"rnnlab run: {err}", file=sys.stderr)
        return 1
    shown = result.summary()
    if result.status == "SKIPPED":
        print(f"rnnlab run: skipped: {result.reason or ''}")
        return 1
    print(f"rnnlab run: {config.model.cell} × {config.data.name} {result.status}, run "
          f"{result.run_id}")
    for key, value in shown.items():
        print(f"  {key:22s} {console.readable(value)}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from experiments.orchestration import plan as sweep

    # a run here is checked against this machine's devices too (Keras: not for a dry run)
    plan = sweep.load_sweep(args.file, overrides=[*_distribution_set(args), *args.set],
                            only=args.only, devices=not args.dry_run)
    exported = None
    if args.skip_exported:  # launch imports Keras: only when an export is to be read
        from experiments.orchestration import launch

        exported = launch.read_exported(args.skip_exported, plan.name)
    if args.dry_run:
        sweep.dry_run(plan, done=exported.runs if exported else ())
        return 0
    from experiments.guards import Stopped, stop_on_signals
    from experiments.orchestration import launch
    from experiments.orchestration.engine import EngineSettings, engine_for
    from experiments.recording.store import TrackingUnavailable

    if args.checkpoint_dir:  # read by every run, here and in Ray's workers (forwarded)
        os.environ["RNNLAB_CHECKPOINT_DIR"] = os.path.abspath(args.checkpoint_dir)
    # Ray only with --workers / --address / $RAY_ADDRESS; checked before any MLflow run exists
    engine = engine_for(EngineSettings.from_args(args), (p.config for p in plan.runs))
    try:
        with stop_on_signals():
            outcomes = launch.run_sweep(plan, engine=engine, exported=exported)
    except Stopped as stop:
        return stop.exit_code
    except KeyboardInterrupt:
        return 130
    except TrackingUnavailable as err:
        print(f"rnnlab sweep: {err}", file=sys.stderr)
        return 1
    finally:
        engine.close()
    return 1 if any(o.status in ("FAILED", "UNFINISHED") for o in outcomes) else 0


def _add_engine(p: argparse.ArgumentParser, what: str, unit: str) -> None:
    """The Ray engine's flags (docs/scale.md), shared by `sweep` and `tune`."""
    engine = p.add_argument_group(f"engine (docs/scale.md); without --workers / --address / "
                                  f"$RAY_ADDRESS: one {unit} at a time in this process, no Ray")
    engine.add_argument("--workers", type=int, metavar="N",
                        help=f"N {what} at once as Ray tasks (on this machine, or at most N "
                             f"on the cluster of --address)")
    engine.add_argument("--address", metavar="ADDR",
                        help="a Ray cluster's head, HOST:PORT (default $RAY_ADDRESS)")
    engine.add_argument("--cpus-per-run", type=float, metavar="C",
                        help=f"CPUs a {unit} declares and its threads use (default: this "
                             f"machine's CPUs / N; 1 on a cluster)")
    engine.add_argument("--gpus-per-run", type=float, metavar="G",
                        help=f"GPUs a {unit} declares; a fraction (0.25) shares one GPU")
    engine.add_argument("--max-retries", type=int, default=3, metavar="R",
                        help=f"retries of a {unit} whose worker or node died (default 3); it "
                             f"resumes from its checkpoint")
    engine.add_argument("--checkpoint-dir", metavar="DIR",
                        help="checkpoints' root (= $RNNLAB_CHECKPOINT_DIR); on a cluster a folder "
                             "every node reads, so a retried run resumes anywhere")


def _distribution_set(args: argparse.Namespace) -> list[str]:
    return [f"train.distribution={args.distribution}"] if args.distribution else []


def cmd_tune(args: argparse.Namespace) -> int:
    from experiments.orchestration.tune import cli_tune

    return cli_tune(args)


def cmd_report(args: argparse.Namespace) -> int:
    if args.tuning:
        from experiments.analysis.tuning_report import tuning_report

        def write():
            return tuning_report(args.tuning, args.output)
    elif args.sweep or args.all:
        from experiments.analysis.report import write_report

        def write():
            return write_report(args.sweep, args.output, ui_url=args.ui_url)
    else:
        raise ValueError("say which runs: --sweep NAME (a sweep file's `name`, e.g. quick), --all, "
                         "or --tuning NAME")
    try:
        result = write()
    except LookupError as err:
        print(f"rnnlab report: {err}", file=sys.stderr)
        return 1
    print(result["markdown"])
    files = [os.path.relpath(p, result["folder"]) for p in result["files"]]
    print(f"report written to {result['folder']}/ ({len(files)} files: {', '.join(files)})")
    return 0


def cmd_gradients(args: argparse.Namespace) -> int:
    from experiments.analysis import gradients

    return gradients.cmd_gradients(args)


def cmd_results(args: argparse.Namespace) -> int:
    from experiments.analysis.results_page import cmd_results as results

    return results(args)


def cmd_export(args: argparse.Namespace) -> int:
    from experiments.recording.export import cmd_export as export

    return export(args)


def cmd_ui(args: argparse.Namespace) -> int:
    from experiments.serving import ui

    return ui.main(args)


def _with_sets(config, sets: list[str]):
    return config.with_overrides(list(sets)) if sets else config


class Parser(argparse.ArgumentParser):
    """argparse, with "did you mean ...?" after an unknown command or choice."""

    def error(self, message: str):
        bad = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if bad:
            choices = re.findall(r"'?([\w-]+)'?", bad.group(2))
            close = difflib.get_close_matches(bad.group(1), choices, n=1)
            message = (f"unknown {'command' if self.prog == 'rnnlab' else 'choice'} "
                       f"'{bad.group(1)}'" + (f"; did you mean '{close[0]}'?" if close else "")
                       + f" (choices: {', '.join(choices)})")
        super().error(message)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("rnn-cell-lab")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rnnlab", description=__doc__)
    parser.add_argument("--version", action="version", version=f"rnnlab {version()}")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's, absl's and CUDA's start-up messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("cells", help="list the recurrent cells and their equations")
    p.set_defaults(func=cmd_cells)

    p = sub.add_parser("tasks", help="list the tasks (datasets) with a line on each")
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("data", help="inspect the datasets")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("info", help="sizes, vocabulary, length statistics, location used")
    p.add_argument("name", help="dataset / task name (see datasets.names())")
    _add_set(p, "data.key=value")
    p.set_defaults(func=cmd_data_info)

    p = sub.add_parser("run", help="train and evaluate one configuration, tracked in MLflow")
    p.add_argument("--task", required=True, help="dataset / task name, e.g. adding, imdb")
    p.add_argument("--cell", required=True, help="cell name, e.g. lstm (see `rnnlab cells`)")
    p.add_argument("--config", help="a YAML config file (sections data, model, train, tracking)")
    _add_distribution(p)
    _add_set(p, "section.key=value")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sweep", help="run a sweep file: one MLflow parent run, a child per config")
    p.add_argument("file", help="sweep YAML, e.g. experiments/sweeps/quick.yaml")
    p.add_argument("--dry-run", action="store_true", help="list the runs without running them")
    p.add_argument("--only", action="append", default=[], metavar="KEY=V1[,V2...]",
                   help="run only the planned runs whose KEY is one of the values, e.g. "
                        "data.name=adding,copy (part of a study: same hashes as the whole file); "
                        "repeatable, every item must hold")
    p.add_argument("--skip-exported", metavar="EXPORT",
                   help="a runs export (rnnlab export's folder, e.g. docs/results/study_fair, or "
                        "its *_runs.csv): the configurations FINISHED there are done, not run "
                        "again (a study continued on a new machine with a fresh MLflow store)")
    _add_distribution(p)
    _add_set(p, "section.key=value, applied to every run")
    _add_engine(p, "configurations", "run")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("tune", help="keras-tuner search, one MLflow child run per trial")
    p.add_argument("space", nargs="?", help="search-space YAML, e.g. experiments/spaces/default.yaml")
    p.add_argument("--task", help="dataset / task name (overrides the space's base data.name)")
    p.add_argument("--cell", help="one cell (overrides the space's cells)")
    p.add_argument("--all-cells", action="store_true", help="one search per cell, same budget")
    p.add_argument("--tuner", choices=("random", "bayesian", "hyperband"))
    p.add_argument("--max-trials", type=int, help="trials per cell (hyperband: its own budget)")
    p.add_argument("--name", help="the tuning's name (default: the space's)")
    p.add_argument("--export", metavar="BEST.yaml", help="write the best config(s) as a sweep file")
    p.add_argument("--workdir", help="oracle state (default $RNNLAB_TUNING_DIR or "
                                     "~/.cache/rnnlab/tuning)")
    p.add_argument("--chief", metavar="HOST:PORT", help="serve the oracle to workers started by hand "
                                                        "(--workers: Ray starts them)")
    p.add_argument("--worker", metavar="HOST:PORT", help="run trials from the chief at HOST:PORT")
    p.add_argument("--tuner-id", help="a worker's id (default worker-<pid>)")
    p.add_argument("--connect-timeout", type=float, default=60.0, metavar="S",
                   help="seconds a worker waits for its chief")
    _add_engine(p, "keras-tuner workers (each running trials)", "trial")
    _add_set(p, "section.key=value, applied to the base config")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("report", help="tables and plots comparing the cells, from MLflow")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--sweep", help="the runs of this sweep (its `name`, e.g. quick)")
    which.add_argument("--all", action="store_true", help="every run of every sweep in the store")
    which.add_argument("--tuning", help="a tuning's best/median trials and hyperparameter importance")
    p.add_argument("--output", help="folder (default: reports/<sweep>/ or reports/all/)")
    p.add_argument("--ui-url", help="the MLflow UI the run links point to "
                   "(default: $RNNLAB_UI_URL, else http://127.0.0.1:5000)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("gradients", help="‖∂L/∂x_t‖ against the lag per cell, at init and trained")
    p.add_argument("--task", nargs="+", default=["adding"], help="long-dependency task(s), e.g. adding copy")
    p.add_argument("--cell", nargs="+", help="cells (default: all, see `rnnlab cells`)")
    p.add_argument("--run-id", action="append", default=[],
                   help="measure this finished run's model instead of training (repeatable)")
    p.add_argument("--samples", type=int, default=128, help="test sequences averaged over")
    p.add_argument("--no-train", action="store_true", help="only the models at initialisation")
    p.add_argument("--output", default="reports/gradients", help="folder for the CSV and the plot")
    p.add_argument("--config", help="a YAML config file (sections data, model, train, tracking)")
    _add_set(p, "section.key=value, applied to every cell")
    p.set_defaults(func=cmd_gradients)

    p = sub.add_parser("results", help="docs/RESULTS.md from a sweep's runs (the MLflow store or a "
                       "runs export): claims judged by tests, tables, plots, the per-run CSV")
    p.add_argument("--sweep", default="study_fair", help="the sweep's name (default study_fair, "
                   "the fair study; the first study is `study`)")
    p.add_argument("--output", default="docs", help="folder for RESULTS.md and results/ (default docs)")
    p.add_argument("--also", action="append", default=[], metavar="SWEEP",
                   help="a companion sweep whose runs join the tables and claims (not the progress)")
    p.add_argument("--sweep-file", help="the plan (default: the file the sweep's parent run names)")
    p.add_argument("--from", dest="source", metavar="EXPORT",
                   help="read the runs from a runs export (a *_runs.csv or a folder with one) "
                   "instead of the MLflow store; without it, the store, else "
                   "<output>/results/<sweep>_runs.csv")
    p.add_argument("--compare", metavar="EXPORT",
                   help="an earlier study's runs export: its verdicts beside this page's "
                   "(a 'Changes from the earlier study' table)")
    p.add_argument("--link", metavar="PAGE", help="a related page, linked at the top "
                   "(e.g. the first study's page from the fair study's)")
    p.add_argument("--dirty", choices=["flag", "exclude"], default="flag",
                   help="runs from a tree with uncommitted changes (+dirty): counted in the "
                   "tables (flag, default) or left out of tables and verdicts (exclude)")
    p.add_argument("--no-gradients", action="store_true", help="skip the gradient-flow plot")
    p.add_argument("--gradient-length", type=int, default=100, help="T of the runs measured (100)")
    p.add_argument("--gradient-samples", type=int, default=256, help="test sequences (256)")
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("export", help="the finished runs of sweeps (or a tuning's trials) as CSV "
                       "files the results page can be rebuilt from without the MLflow store")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--sweep", help="the sweep's name (its runs: <sweep>_runs.csv)")
    which.add_argument("--tuning", help="a tuning's name (its trials, instead of a sweep's runs)")
    p.add_argument("--also", action="append", default=[], metavar="NAME",
                   help="another sweep (or tuning) whose runs join the same files; repeatable")
    p.add_argument("--output", required=True, metavar="DIR",
                   help="folder for <name>_runs.csv and <name>_runs_curves.csv; an export "
                        "already there is merged with: its runs this store lacks are kept")
    p.add_argument("--replace", action="store_true",
                   help="overwrite an export already in --output with this store's runs alone")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("ui", help="start the MLflow UI on the project's store (127.0.0.1)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--workers", type=int, default=1, help="MLflow server worker processes")
    p.add_argument("--print-command", action="store_true", help="print the command, start nothing")
    p.set_defaults(func=cmd_ui)

    from experiments.serving.predict import add_parsers as add_predict_parsers

    add_predict_parsers(sub)  # predict, evaluate
    return parser


def _add_distribution(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--distribution", choices=("mirrored", "data_parallel"),
                        help="train each run on every local device (= --set train.distribution="
                             "...; data.batch_size is the global batch)")


def _add_set(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config value ({what}); repeatable")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # One line at a time also into a file or pipe (`rnnlab sweep ... > study.log` in the
    # background): a sweep's result lines would otherwise wait in an 8 KB buffer.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    if args.verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        # MLflow's INFO lines ("Creating initial MLflow database tables...") on a new store; read
        # when mlflow is first imported, which no command does before this point
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    console.check_datasets_package()
    # JAX's compiled programs kept on disk, set before JAX starts (a value the user set stays)
    from experiments.orchestration.engine import compile_cache_env

    os.environ.update(compile_cache_env())
    from datasets.base import CorruptDataError

    with contextlib.nullcontext() if args.verbose else console.native_noise_filtered():
        try:
            return args.func(args)
        except (ValueError, FileNotFoundError, CorruptDataError) as err:
            prefix = f"rnnlab {args.command}"
            message = str(err).removeprefix(f"{prefix}: ")
            print(f"{prefix}: {message}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
