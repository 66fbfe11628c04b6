"""Writing a runs export: the finished runs of sweeps (or the trials of tunings), copied out of the
MLflow store as two CSV files that a fresh clone can rebuild the results page from
(`experiments.analysis.export` reads them back; its docstring is the format):

- ``<name>_runs.csv``: one row per run: the named columns of ``docs/results/study_runs.csv``
  (`provenance.runs_csv`: run_id, run_name, sweep, status, task, T, cell, seed, ..., test
  metrics, solved, times, git_commit), then ``param.<key>`` for every logged param,
  ``tag.<name>`` for every tag (MLflow's ``mlflow.log-model.history``, the logged model's
  paths inside this store, left out) and ``metric.<key>`` for every final metric that has no
  named column;
- ``<name>_runs_curves.csv``: ``run_id, key, step, value``, every metric's history (the
  per-epoch curves: train_loss, val_loss, val_<metric>, epoch_time_s, ...).

``rnnlab export --sweep study_fair --also long_budget --output docs/results/study_fair`` writes
``study_fair_runs.csv`` and ``study_fair_runs_curves.csv`` there; ``--tuning NAME`` exports a
tuning's trials instead (their own folder: a reader finds one ``*_runs.csv`` per folder). Rows
are sorted (task, T, cell, seed) and curves by run, key and step, so a re-export after more runs
finished diffs as added lines.

An export already in the folder is merged with, not overwritten (`merge`): a study runs over
several machines, each with a fresh store, and the committed export holds the earlier machines'
runs. Its rows (and curves) of runs this store does not have are kept; a run the store has is
written from the store; a configuration (sweep and config hash) the export already holds under
another run id keeps the exported row, and the store's run of it is left out and named: the
committed row is what the results page and docs were made from, a second training of the same
configuration only happens when a sweep ran without ``--skip-exported``, and keeping the first
keeps a re-export to added lines. ``--replace`` writes the store's runs alone.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from experiments.recording.tags import CONFIG_HASH_TAG, TRIAL_ID_TAG, TUNING_TAG

SORT_COLUMNS = ("task", "T", "unit_forget_bias", "cell", "seed")  # provenance.sort_rows's keys
CURVES_SUFFIX = "_curves.csv"  # as the reader: <name>_runs.csv + <name>_runs_curves.csv
LEFT_OUT_TAGS = ("mlflow.log-model.history",)
NAMED_METRICS = ("param_count", "baseline", "solved", "train_time_s")  # named columns already
HASH_COLUMN = f"tag.{CONFIG_HASH_TAG}"


@dataclass
class Written:
    runs: Path
    curves: Path
    count: int
    dirty: int
    curve_points: int
    kept: int = 0  # rows kept from the export that was there
    left_out: list[str] = field(default_factory=list)  # store runs of configurations exported before
    merged_with: Path | None = None


def load(sweeps: list[str] | None = None, tunings: list[str] | None = None) -> pd.DataFrame:
    """The completed runs of the sweeps (one per config hash, tuning trials left out), or of the
    tunings' trials, as `mlflow.search_runs` gives them."""
    import mlflow

    from experiments.analysis import readback
    from experiments.recording import store

    frames = [readback.load_runs(name) for name in sweeps or []]
    for name in tunings or []:
        store.configure()
        frames.append(mlflow.search_runs(
            search_all_experiments=True, order_by=["attributes.start_time DESC"],
            filter_string=f"tags.`{TUNING_TAG}` = {store.quote(name)} and "
                          f"tags.`{TRIAL_ID_TAG}` != ''"))
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    return readback.completed(pd.concat(frames, ignore_index=True)).reset_index(drop=True)


def runs_table(runs: pd.DataFrame, epochs_run=None) -> pd.DataFrame:
    """The runs CSV: the page's named columns, then param.*, tag.* and metric.* columns."""
    from experiments.analysis import provenance

    table = provenance.runs_csv(runs, epochs_run)
    params = sorted(c for c in runs if c.startswith("params."))
    tags = sorted(c for c in runs if c.startswith("tags.") and
                  c.removeprefix("tags.") not in LEFT_OUT_TAGS)
    metrics = sorted(c for c in runs if c.startswith("metrics.") and
                     not c.startswith("metrics.test_") and
                     c.removeprefix("metrics.") not in NAMED_METRICS)
    extra = runs[["run_id", *params, *tags, *metrics]].rename(columns=lambda c: (
        c.replace("params.", "param.", 1).replace("tags.", "tag.", 1)
        .replace("metrics.", "metric.", 1)))
    extra = extra.dropna(axis="columns", how="all")
    # the page's CSV already carries the params and tags that vary (provenance.runs_csv)
    extra = extra.drop(columns=[c for c in extra if c != "run_id" and c in table])
    return table.merge(extra, on="run_id", how="left", validate="one_to_one")


def curves_table(runs: pd.DataFrame, run_order: list[str]) -> pd.DataFrame:
    """Every metric history of the runs: run_id, key, step, value."""
    import mlflow

    from experiments.recording import store

    client = mlflow.MlflowClient(store.tracking_uri())
    rows = []
    keys = [c.removeprefix("metrics.") for c in runs if c.startswith("metrics.")]
    for _, run in runs.iterrows():
        for key in keys:
            if pd.isna(run.get(f"metrics.{key}")):
                continue
            history = store.retrying(client.get_metric_history, run["run_id"], key,
                                     what="reading a metric history")
            rows += [(run["run_id"], key, m.step, m.value) for m in history]
    return sort_curves(pd.DataFrame(rows, columns=["run_id", "key", "step", "value"]), run_order)


def sort_curves(curves: pd.DataFrame, run_order: list[str]) -> pd.DataFrame:
    """Curves by run (in `run_order`), key and step; one value per run, key and step."""
    order = {run_id: i for i, run_id in enumerate(run_order)}
    curves = curves.assign(_run=curves["run_id"].map(order),
                           _step=pd.to_numeric(curves["step"], errors="coerce"))
    return curves.sort_values(["_run", "key", "_step"], kind="stable") \
        .drop(columns=["_run", "_step"]) \
        .drop_duplicates(["run_id", "key", "step"], keep="last").reset_index(drop=True)


def _text(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` as its CSV reads back, every cell text (empty: NaN): an exported row and a row from
    the store are then written alike, and an exported one exactly as it was."""
    return _read(io.StringIO(frame.to_csv(index=False)))


def _read(source) -> pd.DataFrame:
    return pd.read_csv(source, dtype=str, keep_default_na=False, na_values=[""])


def _config_keys(table: pd.DataFrame) -> pd.Series:
    """Per row, its sweep and config hash (NaN where either is missing: a tuning's trial)."""
    missing = pd.Series(index=table.index, dtype=object)
    sweep, config = table.get("sweep", missing), table.get(HASH_COLUMN, missing)
    return (sweep + "/" + config).where(sweep.notna() & config.notna())


def merge(table: pd.DataFrame, curves: pd.DataFrame, runs_path: Path):
    """This store's export (`table`, `curves`) joined with the export at `runs_path` (see the
    module docstring): (rows, curves, rows kept from there, store run ids left out). Columns in
    the existing file's order, new ones after them; ValueError when the file is no runs export."""
    from experiments.analysis import provenance

    old = _read(runs_path)
    lacking = [c for c in ("run_id", *SORT_COLUMNS) if c not in old]
    if lacking:
        raise ValueError(f"{runs_path}: no {', '.join(lacking)} column; not a runs export "
                         f"(--replace overwrites it)")
    curves_path = runs_path.with_name(runs_path.stem + CURVES_SUFFIX)
    old_curves = _read(curves_path) if curves_path.is_file() else _text(curves.iloc[:0])
    new = _text(table)
    kept = old[~old["run_id"].isin(new["run_id"])]  # a run the store has: the store's row
    exported = _config_keys(new).isin(_config_keys(kept).dropna())
    left_out = list(new.loc[exported, "run_id"])
    new = new[~exported]
    columns = [*old.columns, *(c for c in new.columns if c not in old.columns)]
    rows = provenance.sort_rows(pd.concat([kept, new], ignore_index=True)[columns])
    joined = pd.concat([old_curves[old_curves["run_id"].isin(kept["run_id"])],
                        _text(curves)[lambda c: c["run_id"].isin(new["run_id"])]],
                       ignore_index=True)
    return rows, sort_curves(joined, list(rows["run_id"])), len(kept), left_out


def write(output: str | Path, *, sweeps: list[str] | None = None,
          tunings: list[str] | None = None, replace: bool = False) -> Written:
    """Write the export of the sweeps' (or tunings') finished runs into `output`, named after the
    first sweep or tuning, merged with the export already there (`merge`) unless `replace`;
    LookupError when none of them has a finished run."""
    from experiments.analysis import provenance

    names = [*(sweeps or []), *(tunings or [])]
    runs = load(sweeps, tunings)
    if runs.empty:
        kind = "sweep" if sweeps else "tuning"
        raise LookupError(f"no finished runs of {kind} {', '.join(map(repr, names))} in the MLflow "
                          f"store (is MLFLOW_TRACKING_URI the study's store?)")
    table = runs_table(runs, provenance.epochs_run)
    curves = curves_table(runs, list(table["run_id"]))
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    runs_path = folder / f"{names[0]}_runs.csv"
    curves_path = runs_path.with_name(runs_path.stem + CURVES_SUFFIX)
    kept, left_out, merged_with = 0, [], None
    if runs_path.is_file() and not replace:
        table, curves, kept, left_out = merge(table, curves, runs_path)
        merged_with = runs_path
    table.to_csv(runs_path, index=False)
    curves.to_csv(curves_path, index=False)
    commits = table.get("git_commit", pd.Series(dtype=object)).fillna("").astype(str)
    return Written(runs_path, curves_path, len(table), int(commits.str.endswith("+dirty").sum()),
                   len(curves), kept, left_out, merged_with)


def cmd_export(args) -> int:
    """`rnnlab export`: the finished runs of a sweep (and --also sweeps) or of a tuning."""
    if bool(args.sweep) == bool(args.tuning):
        raise ValueError("say which runs: --sweep NAME or --tuning NAME (not both)")
    sweeps = [args.sweep, *args.also] if args.sweep else None
    tunings = [args.tuning, *args.also] if args.tuning else None
    try:
        written = write(args.output, sweeps=sweeps, tunings=tunings, replace=args.replace)
    except LookupError as err:
        print(f"rnnlab export: {err}", file=sys.stderr)
        return 1
    dirty = f" ({written.dirty} from an uncommitted tree: tag rnnlab.dirty)" \
        if written.dirty else ""
    print(f"rnnlab export: {written.count} finished runs{dirty} -> {written.runs}; "
          f"{written.curve_points} curve points -> {written.curves}")
    if written.merged_with is not None:
        left_out = f"; {len(written.left_out)} store runs left out, their configurations " \
                   f"exported before: {', '.join(written.left_out)}" if written.left_out else ""
        print(f"rnnlab export: merged: {written.count - written.kept} rows from the store, "
              f"{written.kept} kept from the existing export{left_out} (--replace: the store's "
              f"alone)")
    return 0
