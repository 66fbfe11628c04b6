"""The `rnnlab` command line."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys


def check_datasets_package() -> None:
    """Fail clearly when `import datasets` finds Hugging Face's package instead of ours.

    Our data package is called `datasets`, like Hugging Face's. If both are installed, whichever comes
    first on sys.path wins; ours marks itself with `RNNLAB = True`.
    """
    import datasets

    if not getattr(datasets, "RNNLAB", False):
        location = getattr(datasets, "__file__", "?")
        raise SystemExit(
            f"rnnlab: `import datasets` resolved to another package ({location}), most likely "
            "Hugging Face's `datasets`. RNN Cell Lab ships its own `datasets` package: run rnnlab "
            "from a virtual environment without Hugging Face's (`make run` creates one in .venv), "
            "or `pip uninstall datasets` there and reinstall this project."
        )


def cmd_cells(args: argparse.Namespace) -> int:
    import cells

    for name in cells.names():
        cls = type(cells.get(name, units=1))
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{name:10s} {cls.__name__:18s} {summary}")
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
        print(f"{key:20s} {value}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from experiments.config import Config, load_config, validate_names

    config = load_config(args.config) if args.config else Config()
    verbose = ["train.verbose=2"] if config.train.verbose == 0 else []  # Keras's line per epoch
    config = _with_sets(config, [f"data.name={args.task}", f"model.cell={args.cell}", *verbose,
                                 *args.set])
    validate_names(config, "rnnlab run")
    from experiments.run import run

    result = run(config)
    if result.status == "SKIPPED":
        print(f"rnnlab run: skipped: {result.reason}")
        return 1
    print(f"rnnlab run: {config.model.cell} × {config.data.name} {result.status}, "
          f"run {result.run_id}")
    shown = {**{f"test_{k}": v for k, v in result.metrics.items()}, "param_count":
             result.param_count, "baseline": result.baseline, "solved": result.solved}
    for key, value in sorted(shown.items()):
        print(f"  {key:22s} {value}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from experiments import sweep

    plan = sweep.load_sweep(args.file, overrides=args.set)
    if args.dry_run:
        sweep.dry_run(plan)
        return 0
    from experiments import launch  # loads Keras and MLflow: not needed for a dry run

    try:
        outcomes = launch.run_sweep(plan)
    except KeyboardInterrupt:
        return 130
    return 1 if any(o.status == "FAILED" for o in outcomes) else 0


def cmd_tune(args: argparse.Namespace) -> int:
    from experiments.tune import cli_tune

    return cli_tune(args)


def cmd_report(args: argparse.Namespace) -> int:
    from experiments.report import write_report

    if args.tuning:
        from experiments.tuning_report import cli_report_tuning

        return cli_report_tuning(args)

    try:
        result = write_report(args.sweep, args.output)
    except LookupError as err:
        print(f"rnnlab report: {err}", file=sys.stderr)
        return 1
    print(result["markdown"])
    print(f"report written to {result['folder']}/ ({len(result['files'])} files: "
          f"{', '.join(str(p.relative_to(result['folder'])) for p in result['files'])})")
    return 0


def cmd_gradients(args: argparse.Namespace) -> int:
    from experiments import gradients

    return gradients.cmd_gradients(args)


def ui_command(uri: str, host: str = "127.0.0.1", port: int = 5000, workers: int = 1) -> list[str]:
    """The argv that starts the MLflow UI on the project's store (one worker: MLflow's default of
    four takes minutes to start on a small machine, and a local UI has one user)."""
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
            "--host", host, "--port", str(port), "--workers", str(workers)]


def cmd_ui(args: argparse.Namespace) -> int:
    from experiments import tracking

    argv = ui_command(tracking.tracking_uri(), port=args.port, workers=args.workers)
    if args.print_command:
        print(shlex.join(argv))
        return 0
    print(f"MLflow UI on http://127.0.0.1:{args.port} (store {argv[argv.index('--backend-store-uri') + 1]});"
          " Ctrl-C stops it")
    try:
        return subprocess.call(argv)
    except KeyboardInterrupt:
        return 0


def _with_sets(config, sets: list[str]):
    return config.with_overrides(list(sets)) if sets else config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("cells", help="list the recurrent cells and their equations' summaries")
    p.set_defaults(func=cmd_cells)

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
    _add_set(p, "section.key=value")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sweep", help="run a sweep file: one MLflow parent run, a child per config")
    p.add_argument("file", help="sweep YAML, e.g. experiments/sweeps/quick.yaml")
    p.add_argument("--dry-run", action="store_true", help="list the runs without running them")
    _add_set(p, "section.key=value, applied to every run")
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
    p.add_argument("--chief", metavar="HOST:PORT", help="serve the oracle to workers")
    p.add_argument("--worker", metavar="HOST:PORT", help="run trials from the chief at HOST:PORT")
    p.add_argument("--tuner-id", help="a worker's id (default worker-<pid>)")
    p.add_argument("--connect-timeout", type=float, default=60.0, metavar="S",
                   help="seconds a worker waits for its chief")
    _add_set(p, "section.key=value, applied to the base config")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("report", help="tables and plots comparing the cells, from MLflow")
    p.add_argument("--sweep", help="only the runs of this sweep (default: all runs)")
    p.add_argument("--tuning", help="a tuning's best/median trials and hyperparameter importance")
    p.add_argument("--output", help="folder (default: reports/<sweep>/ or reports/all/)")
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

    p = sub.add_parser("ui", help="start the MLflow UI on the project's store (127.0.0.1)")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--workers", type=int, default=1, help="MLflow server worker processes")
    p.add_argument("--print-command", action="store_true", help="print the command, start nothing")
    p.set_defaults(func=cmd_ui)

    from experiments.predict import add_parsers as add_predict_parsers

    add_predict_parsers(sub)  # predict, evaluate
    return parser


def _add_set(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config value ({what}); repeatable")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    check_datasets_package()
    args = build_parser().parse_args(argv)
    from datasets.base import CorruptDataError

    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, CorruptDataError) as err:
        print(f"rnnlab {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
