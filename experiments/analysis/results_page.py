"""The results page (`rnnlab results`): `docs/RESULTS.md`, from a sweep's runs.

The runs come from the MLflow store when it has the sweep; otherwise (a fresh clone: the study's
store does not travel) from the committed runs export `docs/results/<sweep>_runs.csv` (or
`docs/results/<sweep>/`, where `rnnlab export --output docs/results/<sweep>` writes it), or from
`--from PATH` (an export file or directory, `experiments.analysis.export`). Writes into `--output`
(default `docs/`):

- `RESULTS.md`, in reading order: a summary figure (settings × cells: solved seeds, or the metric
  against the task's best), the literature's claims in a short table (verdict, effect with its
  95 % interval, Holm-corrected p, n, budget, configuration: tuned per cell or shared), our own
  targets in a second one; for a study tuned per cell (its sweep file's `tuned:` block) the tuning
  per task family (`.tunings`) and the companion sweeps' claims apart; with `--compare` an earlier
  study's verdicts beside these; how verdicts are reached, the provenance; then the evidence per claim (its source's setup beside ours, every
  comparison with its test), the hyperparameters per task and cell, and per task family the
  tables (mean with its 95 % interval, n, solved k/n) and plots;
- `results/<sweep>_runs.csv`: one row per run with every hyperparameter (`param.*`): the export
  (written when the page reads the store; read from an export, the page links that export);
- `results/*.png`: the figures (learning curves need per-epoch curves: the store, or an export
  with its curves file; the gradient flow needs the store's trained models).

The claims: `experiments.analysis.sources`; the tests behind their verdicts: `.verdicts`, `.stats`;
provenance and the CSV: `.provenance`; figures: `.page_plots`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import cells
from experiments.analysis import (
    cost,
    export,
    page_plots,
    provenance,
    readback,
    report,
    report_plots,
    sources,
    tunings,
)
from experiments.analysis import stats as st
from experiments.analysis import verdicts as vd
from experiments.analysis.readback import natural_key
from experiments.goals import missing
from experiments.recording.tags import FAMILY_TAG, SWEEP_TAG, TASK_TAG
from experiments.tasks import family_name

FAMILIES = {"long_dependency": "Long-dependency tasks", "sentiment": "IMDB (sentiment)",
            "translation": "Multi30k (translation)"}
RESULT_FILES = ("learning_curves_*.png", "metric_vs_length.png", "gradients_*.png",
                "gradients_*.csv", "summary.png")  # never a runs CSV: it may be the page's source
STORE_ONLY = ("learning_curves_*.png", "gradients_*.png", "gradients_*.csv")
HYPERPARAMETERS = {"params.train.optimizer": "optimizer", "params.train.lr": "lr",
                   "params.data.batch_size": "batch", "params.train.epochs": "epochs",
                   "params.train.early_stopping_patience": "early stop",
                   "params.train.clipnorm": "clipnorm", "params.train.global_clipnorm": "global clip",
                   "params.model.dropout": "dropout", "params.data.num_train": "train seq",
                   "params.model.units_used": "units", "params.model.match_params": "match params"}
VERDICT_NOTE = (
    "How a verdict is reached (`experiments/analysis/stats.py`): per setting, a test from "
    "`scipy.stats` — Welch's t-test on the key test metric, Fisher's exact test on solved shares "
    "where a claim is about solving, a one-sample t or exact binomial test against a published "
    "level, non-inferiority (\"does not hurt\", \"≥\") or TOST (\"≈\") against a margin the claim "
    "declares ({margins}) — then Holm's correction across the settings the claim judges, at "
    "α = {alpha}. *confirmed* / *contradicted*: the corrected test says so; *inconclusive*: it "
    "does not (the evidence gives n, p and the effect with its 95 % interval, and the seeds per "
    "cell a test would need for 80 % power at the observed effect, before Holm's correction: a lower bound); *no verdict (n = 1)*: a side "
    "has one seed; *no information*: both cells stayed at chance (not a tie); *not run yet*: the "
    "runs it needs do not exist. Seeds decide what a solved-share difference can show: 3/3 "
    "against 0/3 gives Fisher p = 0.10, 5/5 against 0/5 0.008.")
FAIRNESS_NOTE = (
    "**Configuration.** Every cell trained with one shared configuration per task (the "
    "hyperparameter tables below), chosen on the LSTM family or by hand, not tuned per cell; a "
    "verdict here is about the cells under that configuration, not about the cells as such.")
TUNED_NOTE = (
    "**Configuration.** Every cell trained with its own configuration per task family, tuned on "
    "validation data from the same search budget as every other cell ([the tuning](#tuning-per-"
    "task-family)); the claims are judged on this study's runs alone. A claim whose task family "
    "has no runs yet says *not run yet*: it never falls back to another study's untuned runs.")
TUNED, SHARED = "tuned per cell", "shared, not tuned"
STUDY_DOC = Path(__file__).resolve().parents[2] / "docs" / "study.md"


class NoRuns(LookupError):
    """The page's own sweep has no runs (in the store or the export)."""


@dataclass
class Source:
    """Where the runs were read from: the runs, a curves reader (None: no curves), a label, and
    whether the MLflow store is there (progress from its parent run, the gradient flow)."""

    runs: pd.DataFrame
    history: object
    label: str
    store: bool
    export: Path | None = None  # the runs export read (the page links it)


def load(sweep: str, also: Iterable[str], path: str | Path | None, default: Path) -> Source:
    """The runs of `sweep` and `also`: from the export `path`; else the store; else `default`."""
    names = [sweep, *also]
    if path is None:
        found = {name: readback.load_runs(name) for name in names}
        if not found[sweep].empty:
            for name, runs in found.items():
                if runs.empty:
                    raise LookupError(f"no runs found for sweep {name!r} (--also)")
            runs = pd.concat(found.values(), ignore_index=True)
            from experiments.recording import store

            return Source(runs, readback.metric_history, f"MLflow store {store.tracking_uri()}", True)
        # where the page writes its CSV, or where `rnnlab export --output <folder>/<sweep>` does
        path = next((p for p in (default, default.parent / default.stem.removesuffix("_runs") / default.name)
                     if p.is_file()), None)
        if path is None:
            raise NoRuns(f"no runs found for sweep {sweep!r} (and no export {default})")
    elif not Path(path).exists():
        raise NoRuns(f"{path}: no such export file")
    read = export.load(path, names)
    for name in names:
        if not (read.runs.get(f"tags.{SWEEP_TAG}", pd.Series(dtype=object)) == name).any():
            raise (NoRuns if name == sweep else LookupError)(
                f"no runs of sweep {name!r} in the export {read.source}")
    history = read.history if not read.curves.empty else None
    return Source(read.runs, history, f"the runs export {read.source} (no MLflow store)", False,
                  Path(read.source))


def write_results(sweep: str = "study_fair", output: str | Path = "docs", *, source: str | Path | None = None,
                  sweep_file: str | Path | None = None, gradients: bool = True,
                  gradient_length: int = 100, gradient_samples: int = 256,
                  command: str | None = None, also: Iterable[str] = (), dirty: str = "flag",
                  compare: str | Path | None = None, link: str | Path | None = None) -> dict:
    """Write `<output>/RESULTS.md` and `<output>/results/`; returns the paths, the judgements
    and the Markdown (see the module docstring).

    A study whose sweep file tunes its cells (`tuned:`, `experiments.analysis.tunings`) is judged
    on its own runs alone: its page shows the tuning, says *not run yet* for the claims of
    families without runs (also before its first export: no runs is a state, not an error), and
    judges companion sweeps (`also`: shared configurations) in a table of their own. `compare`:
    an earlier study's runs export, its verdicts beside this page's; `link`: a page linked at the
    top (e.g. the first study's from the fair study's)."""
    command = command or f"rnnlab results --sweep {sweep}"
    output, also = Path(output), list(also)
    folder = output / "results"
    csv_path = folder / f"{report_plots.slug(sweep)}_runs.csv"
    sweep_path = Path(sweep_file or Path("experiments/sweeps") / f"{sweep}.yaml")
    families = tunings.read(sweep_path)
    try:
        src = load(sweep, also, source, csv_path)
    except NoRuns as err:
        if not families:
            raise
        src = Source(pd.DataFrame(columns=["run_id", "status", "start_time", "end_time",
                                           f"tags.{SWEEP_TAG}"]),
                     None, f"no runs yet ({err})", False)
    runs = src.runs
    own = runs[runs.get(f"tags.{SWEEP_TAG}") == sweep]
    parent = _parent(sweep) if src.store else pd.DataFrame()
    planned, planned_from = provenance.plan(sweep, parent if not parent.empty else own, sweep_file)
    facts = [*provenance.provenance(runs, command, src.label, dirty),
             ("progress", provenance.progress_line(own, parent, planned, planned_from))]
    facts += [("also", _companion(name, runs[runs[f"tags.{SWEEP_TAG}"] == name], bool(families)))
              for name in also]
    folder.mkdir(parents=True, exist_ok=True)
    kept = () if src.history is not None else STORE_ONLY  # plots this source cannot redraw
    previous = {p for pattern in RESULT_FILES for p in folder.glob(pattern)
                if not any(p.match(k) for k in kept)}
    if src.store:  # read from an export, the page links that file instead of copying it
        provenance.runs_csv(runs, provenance.epochs_run).to_csv(csv_path, index=False, float_format="%.6g")
    else:
        csv_path = src.export
    if families:  # tuned per cell: the companions' shared configurations are judged apart
        ev = vd.evidence(own, dirty, per_cell={k for f in families for k in f.space.searched_keys()})
        companions = vd.evidence(runs[runs.get(f"tags.{SWEEP_TAG}") != sweep], dirty)
    else:
        ev, companions = vd.evidence(runs, dirty), pd.DataFrame()
    order = list(cells.names())
    claims, targets = vd.judge_all(ev, sources.CLAIMS), vd.judge_all(ev, sources.TARGETS)
    hours = _hours(sweep_path, families, ev)
    config = configurations([*claims, *targets], ev, families, hours)
    figures = {"summary": page_plots.summary_figure(ev, folder, order),
               "length": report_plots.plot_metric_vs_length(ev, folder, order) if not ev.empty else None}
    curves = report_plots.plot_learning_curves(ev, folder, order, src.history) \
        if src.history is not None and not ev.empty else []
    if gradients and src.store and not ev.empty:
        gradient_png, notes = page_plots.gradient_flow(ev, folder, gradient_length, gradient_samples, sweep)
    else:
        gradient_png = None
        notes = ["not computed: " + ("the trained models live in the MLflow store, not in the "
                                     "export" if not src.store else f"`{command}` ran without gradients")]
    kept_plots = sorted(p for k in kept for p in folder.glob(k))
    top, sections = _study_parts(output, families, ev, planned, link, sweep_path, hours)
    if compare:
        sections += changes_section(compare, claims + targets, output, dirty)
        top += ["Which verdicts changed from the earlier study: [the changes](#changes-from-the-earlier-study).",
                ""]
    if not companions.empty:
        sections += companion_section(companions, also)
    text = markdown(sweep, facts, provenance.progress(planned, own) if planned is not None else None,
                    claims, targets, ev, output, csv_path, figures, curves, kept_plots,
                    (gradient_png, notes, gradient_length, gradient_samples), command,
                    config=config, top=top, sections=sections)
    page = output / "RESULTS.md"
    page.write_text(text)
    files = [page, *([csv_path] if src.store else []), *curves, *(p for p in figures.values() if p),
             *([gradient_png, gradient_png.with_suffix(".csv")] if gradient_png else [])]
    for stale in previous - set(files):  # only once the new page is written
        stale.unlink()
    return {"page": page, "files": files, "claims": claims, "targets": targets, "markdown": text,
            "config": config}


# --- a study tuned per cell ---------------------------------------------------------------------------


def _hours(sweep_path: Path, families: list[tunings.Family], ev: pd.DataFrame) -> dict[str, float]:
    """Estimated hours per family without runs (tuning if not tuned, and seeded runs), from the
    first study's measured runs (`cost`, as `python -m benchmarks.study_cost`); {} without them."""
    ran = set(ev["task"]) if not ev.empty else set()
    waiting = {f.task: not f.tuned for f in families if f.task not in ran}
    if not waiting or not cost.MEASURED.is_file():
        return {}
    return cost.family_hours(sweep_path, waiting, cost.measured_runs())


def _unplanned(j: vd.Judgement, ev: pd.DataFrame, tasks: list[str]) -> str:
    """Why a claim whose families ran has no verdict: its configurations are not in the plan. With
    the configurations its rule names as missing, what running them would cost: each with the
    family's seeds per cell, at its runs' median wall time (one run at a time)."""
    runs = ev[ev["task"].isin(tasks)] if not ev.empty else ev
    if not j.missing or runs.empty:
        return "setting not planned"
    seeds = int(runs.groupby(["setting", "cell"]).size().max())
    seconds = float(provenance.wall_seconds(runs).median())
    hours = len(j.missing) * seeds * seconds / 3600
    return (f"{len(j.missing)} configurations not in the plan ({seeds} seeds each: "
            f"{len(j.missing) * seeds} runs, ≈ {hours:.1f} h at its runs' median "
            f"{seconds / 60:.0f} min)")


def configurations(judged, ev: pd.DataFrame, families: list[tunings.Family],
                   hours: dict[str, float] | None = None) -> dict[str, str]:
    """Per claim, the configuration its runs trained with: 'shared, not tuned' (a study without
    tuning), 'tuned per cell' (with the families judged when the claim spans several and some
    have no runs), or for a claim without runs why: its families not tuned yet, tuned but not
    run yet (with the estimated hours they need), or its setting not in the study's plan."""
    if not families:
        return {claim.topic: SHARED for claim, _ in judged}
    ran = set(ev["task"]) if not ev.empty else set()
    status = {f.task: ("run" if f.task in ran else "tuned, no runs yet" if f.tuned
                       else "not tuned yet") for f in families}
    out = {}
    for claim, j in judged:
        wanted = [t for t in (claim.tasks or status) if t in status]
        if j.verdict == st.NOT_RUN:
            why = {}
            for t in wanted:
                if status[t] != "run":
                    why.setdefault(status[t], []).append(t)
            need = sum((hours or {}).get(t, 0.0) for ts in why.values() for t in ts)
            out[claim.topic] = "not run yet: " + ("; ".join(f"{', '.join(ts)} {s}" for s, ts in why.items())
                                                  if why else _unplanned(j, ev, wanted)) \
                + (f" (≈ {need:.1f} h)" if need else "")
        elif claim.tasks:
            out[claim.topic] = TUNED
        else:
            done = [t for t in wanted if status[t] == "run"]
            out[claim.topic] = TUNED + (f" ({len(done)} of {len(wanted)} families)"
                                        if len(done) < len(wanted) else "")
    return out


def _study_parts(output: Path, families, ev: pd.DataFrame, planned, link,
                 sweep_path: Path, hours: dict[str, float]) -> tuple[list[str], list[str]]:
    """(lines under the title, sections after the claims): the link to the related page and the
    configuration note; for a tuned study the tuning per family."""
    top = []
    if link:
        page = Path(link)
        title = next((line.lstrip("# ").strip() for line in page.read_text().splitlines()
                      if line.startswith("# ")), page.name) if page.is_file() else page.name
        top += [f"See also: [{title}]({_relative(page, output)}).", ""]
    top += [TUNED_NOTE if families else FAIRNESS_NOTE, ""]
    if not families:
        return top, []
    finished = ev.groupby("task").size().to_dict() if not ev.empty else {}
    counts = pd.Series([p.config.data.name for p in planned or []], dtype=object).value_counts().to_dict()
    study = _relative(STUDY_DOC, output)
    parts = ["## Tuning per task family", "",
             (f"Each family was tuned once, at one length, per cell: a random search of the same "
              f"trials per cell with the same seeded draws, scored by the best per-epoch validation "
              f"score (the test data never chooses); trials train with a seed no seeded run uses. "
              f"Protocol, commands and the hours each family costs: [docs/study.md]({study}). Read "
              f"from the committed search spaces and the files `rnnlab tune --export` wrote."), "",
             _md(tunings.overview(families, finished, counts, hours)), ""]
    order = list(cells.names())
    for f in families:
        parts += [f"### {f.task}", "", f"Space `{f.space_path}` ({tuned_at_text(f)}); "
                  + (f"tuned values `{f.best_path}`." if f.tuned else
                     f"**not tuned yet**: `{f.command()}` (estimated hours: [docs/study.md]({study}#compute))."), ""]
        if f.tuned:
            parts += [_md(tunings.cell_table(f, order)), ""]
            edge_lines = tunings.edges(f)
            parts += [*(f"- At an edge: {line}" for line in edge_lines), ""] if edge_lines else []
        if f.free:
            parts += [(f"Runs of this family that differ from the tuned setting in "
                       f"{', '.join(f'`{k}`' for k in f.free)} take these tuned values too "
                       f"(`free:` in the sweep file): borrowed, not tuned for them."), ""]
    missing_ = tunings.untuned(families)
    if missing_:
        parts += [(f"*Not run yet* in the claims: the families {', '.join(missing_)} are not tuned "
                   f"yet (a tuned family without runs: its runs are not exported yet). The hours "
                   f"each still needs (≈, one run at a time) are costed as `python -m "
                   f"benchmarks.study_cost {sweep_path}` does, from the first study's measured wall "
                   f"times: [docs/study.md]({study}#compute)."), ""]
    return top, parts


def tuned_at_text(f: tunings.Family) -> str:
    s = f.space
    return (f"tuned at {tunings.tuned_at(s)}, {s.max_trials} {s.tuner} trials per cell, "
            f"{s.direction} {s.objective}")


def _relative(path: Path, output: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), output.resolve())).as_posix()


def changes_section(compare: str | Path, judged, output: Path, dirty: str) -> list[str]:
    """'Changes from the earlier study': per claim its verdict there (every run of that study's
    export judged together, as its own page did) and here, n and Holm p beside each."""
    read = export.load(compare)
    before = {claim.topic: (claim, j) for claim, j in
              vd.judge_all(vd.evidence(read.runs, dirty), [*sources.CLAIMS, *sources.TARGETS])}
    earlier = claims_frame([before[claim.topic] for claim, _ in judged]).to_dict("records")
    rows = [{"claim": now["claim"], "earlier study": _short(then), "this study": _short(now),
             "changed": "-" if st.NOT_RUN in (j.verdict, before[claim.topic][1].verdict)
             else "yes" if before[claim.topic][1].verdict != j.verdict else "no"}
            for (claim, j), then, now in zip(judged, earlier, claims_frame(judged).to_dict("records"))]
    return ["## Changes from the earlier study", "",
            (f"The earlier study's verdicts from its runs export [{Path(compare).name}]"
             f"({_relative(Path(read.source), output)}) (its cells shared one configuration per "
             "task), judged by the same rules as this page's; n and the Holm-corrected p beside "
             "each verdict."), "", _md(pd.DataFrame(rows)), ""]


def _short(row: dict) -> str:
    """A claims-table row as 'verdict (n 3 vs 3, p 0.20)'."""
    extra = [f"{k} {row[c]}" for k, c in (("n", "n"), ("p", "p (Holm)")) if row[c] != "-"]
    return row["verdict"].strip("*") + (f" ({', '.join(extra)})" if extra else "")


def companion_section(companions: pd.DataFrame, also: list[str]) -> list[str]:
    """The companion sweeps' claims, apart: their cells shared one configuration (not tuned)."""
    judged = [(c, j) for c, j in vd.judge_all(companions, [*sources.CLAIMS, *sources.TARGETS])
              if j.verdict != st.NOT_RUN]
    names = ", ".join(f"`{n}`" for n in also) or "companion sweeps"
    return ["## Companion sweeps (shared config, not tuned)", "",
            (f"The runs of {names}: every cell trained with one shared configuration, not tuned "
             "per cell, so they are not this study's evidence; their claims are judged here "
             "apart, on their runs alone."), "",
            _md(claims_frame(judged, {c.topic: "shared config, not tuned" for c, _ in judged})), ""]


def _companion(name: str, found: pd.DataFrame, apart: bool = False) -> str:
    done = len(readback.completed(found))
    tasks = ", ".join(found[f"tags.{TASK_TAG}"].dropna().unique())
    rest = (f"; {len(found) - done} more not finished (running, failed or killed), left out"
            if done < len(found) else "")
    runs = "run" if done == 1 else "runs"
    where = "judged apart: shared config, not tuned" if apart else "in the tables and claims"
    return f"the {done} finished {runs} of sweep `{name}` (task {tasks}), {where}{rest}"


def _parent(sweep: str) -> pd.DataFrame:
    """The sweep's parent run(s) (tag `rnnlab.role=sweep`)."""
    import mlflow

    from experiments.recording import store

    return mlflow.search_runs(search_all_experiments=True,
                              filter_string=store.parent_filter("sweep", sweep))


# --- the Markdown -----------------------------------------------------------------------------------


def claims_frame(judged: list[tuple[vd.Claim, vd.Judgement]],
                 config: dict[str, str] | None = None) -> pd.DataFrame:
    """The short table: claim, source, verdict (with the seeds a verdict would need), the decisive
    comparison's effect [95 % CI], Holm p, n, budget and, given `config`, the configuration the
    runs trained with (tuned per cell, shared, or why the claim has no runs)."""
    rows = []
    for claim, j in judged:
        c = j.decisive()
        tested = c is not None and c.tested
        seeds = j.seeds_needed()
        verdict = j.verdict + (f" (≈{seeds} seeds/cell)" if j.verdict == st.INCONCLUSIVE and seeds else "")
        rows.append({
            "claim": f"[{claim.topic}](#{_anchor(claim.topic)})", "source": claim.source,
            "verdict": f"**{verdict}**",
            "effect [95 % CI]": (f"{'solved share' if c.kind == st.SOLVED else c.metric} "
                                 f"{st._signed(c.effect)} [{st._g(c.ci[0])}, {st._g(c.ci[1])}]")
            if tested else "-",
            "p (Holm)": st._p(min(c.p_holm, c.p_against_holm)) if tested else "-",
            "n": (f"{c.a.n} vs level" if c.kind == "level" else f"{c.a.n} vs {c.b.n}") if c else "-",
            "budget": (c.budget or j.budget) if c else j.budget,
            **({"config": config.get(claim.topic, "-")} if config is not None else {}),
        })
    return pd.DataFrame(rows)


def _anchor(topic: str) -> str:
    return "".join(ch for ch in topic.lower().replace(" ", "-") if ch.isalnum() or ch == "-")


def comparisons_frame(j: vd.Judgement) -> pd.DataFrame:
    rows = [{"setting": c.setting, "A": c.a.text(),
             "B": f"level {st._g(c.b.mean)}" if c.kind == "level" else c.b.text(),
             "outcome": c.outcome(), "test": c.text() if c.tested else "-",
             "Mann–Whitney p": st._p(c.mann_whitney_p), "seeds for 80 % power": c.seeds_needed or "-"}
            for c in j.comparisons]
    return pd.DataFrame(rows)


def setup_frame(claim: vd.Claim, rows: pd.DataFrame) -> pd.DataFrame:
    """The source's setup beside ours, aspect by aspect."""
    lengths = sorted({int(v) for v in rows.get("length", pd.Series(dtype=float)).dropna()})
    ours = {"task form": ", ".join(dict.fromkeys(rows["task"])) if len(rows) else "-",
            "lengths": ", ".join(f"T = {v}" for v in lengths) or "-",
            "training": vd.budget(rows) if len(rows) else "-",
            "network": _values(rows, "params.model.units_used", "units") + " (matched parameters)"
            if "params.model.match_params" in rows and rows["params.model.match_params"].map(
                lambda v: not missing(v)).any() else _values(rows, "params.model.units_used", "units"),
            "optimiser": " ".join(filter(None, (_values(rows, "params.train.optimizer", ""),
                                                vd.lr_text(rows)))) or "-"}
    aspects = list(dict.fromkeys([*claim.theirs, *ours]))
    return pd.DataFrame({"aspect": aspects, "theirs (as the source states it)": [claim.theirs.get(a, "-") for a in aspects],
                         "ours": [ours.get(a, "-") for a in aspects]})


def _values(rows: pd.DataFrame, column: str, name: str) -> str:
    found = sorted({str(v) for v in rows.get(column, pd.Series(dtype=object)).dropna() if not missing(v)},
                   key=vd.value_order)
    return (f"{name} " if name and found else "") + ("/".join(found) or "-")


def claim_rows(ev: pd.DataFrame, claim: vd.Claim) -> pd.DataFrame:
    """The runs of the tasks a claim judges (for its setup table)."""
    return ev if not claim.tasks or ev.empty else ev[ev["task"].isin(claim.tasks)]


def task_table(rows: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Per setting × cell: n, mean [95 % CI], chance, solved k/n, parameters, dirty runs."""
    out = []
    for (setting, cell), group in rows.groupby(["setting", "cell"], sort=False):
        goal = readback.goal(rows[rows["setting"] == setting])
        s = vd.sample(group, goal)
        low, high = s.ci
        params = readback.numeric(group, "metrics.param_count")
        out.append({"setting": setting, "cell": cell, "n": s.n,
                    f"{goal.metric} mean [95 % CI]": f"{s.mean:.4g}" + (f" [{low:.4g}, {high:.4g}]" if s.n > 1 else ""),
                    "chance": goal.chance_text,
                    "solved": f"{s.k}/{len(s.solved)}" if s.solved is not None else "-",
                    "solved when": goal.solved_when,
                    "params": f"{int(params.mean()):,}" if len(params) else "-",
                    "dirty": int(group["dirty"].sum()) or "-"})
    table = pd.DataFrame(out)
    if table.empty:
        return table
    rank = {c: i for i, c in enumerate(order)}
    keys = table.assign(_s=table["setting"].map(natural_key), _c=table["cell"].map(rank))
    return table.loc[keys.sort_values(["_s", "_c"]).index].reset_index(drop=True)


def hyper_table(rows: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Per setting, the training hyperparameters: one row 'all cells' where every cell had the
    same (units aside: matched parameter counts give each cell its own), else a row per cell."""
    present = {c: n for c, n in HYPERPARAMETERS.items()
               if c in rows and rows[c].map(lambda v: not missing(v)).any()}
    shared = [c for c in present if c != "params.model.units_used"]
    out = []
    for setting, group in sorted(rows.groupby("setting"), key=lambda kv: natural_key(kv[0])):
        cells_ = [c for c in order if (group["cell"] == c).any()]
        first = {c: group[group["cell"] == c].iloc[0] for c in cells_}
        values = {c: {present[k]: _figure(first[c][k]) for k in present} for c in cells_}
        if len({tuple(str(first[c][k]) for k in shared) for c in cells_}) == 1:
            units = " / ".join(f"{c} {first[c].get('params.model.units_used', '-')}" for c in cells_)
            out.append({"setting": setting, "cell": "all", **values[cells_[0]],
                        **({"units": units} if "params.model.units_used" in present else {})})
        else:
            out += [{"setting": setting, "cell": c, **values[c]} for c in cells_]
    return pd.DataFrame(out)


def _figure(value):
    """A logged value as a reader wants it: a float's 3 significant digits (a tuned learning rate
    is logged as 0.08171657161374384), anything else as logged."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return value if number.is_integer() or len(str(value)) <= 6 else f"{number:.3g}"


def _md(frame: pd.DataFrame) -> str:
    return report.markdown_table(frame.astype(object).fillna("-")) if not frame.empty else "_none_"


def markdown(sweep, facts, done, claims, targets, ev, output, csv_path, figures, curves, kept_plots,
             gradient, command, *, config=None, top=(), sections=()) -> str:
    def link(path: Path) -> str:
        return _relative(path, output)

    margins = ", ".join(f"{k} {v:g}" for k, v in vd.MARGINS.items())
    rows = (f"([{link(csv_path)}]({link(csv_path)}), one row per run with its hyperparameters)"
            if csv_path else "(none yet)")
    parts = [f"# RNN Cell Lab — results of the `{sweep}` sweep", "",
             (f"Generated by `{command}` from {dict(facts)['runs read from']}; every number is computed "
              f"from the runs {rows}. The literature's numbers are citations, declared with the rule "
              "that judges each claim in `experiments/analysis/sources.py` (the tests in `verdicts.py`, `stats.py`)."), "",
             *top]
    if figures["summary"]:
        parts += [f"![cells × settings]({link(figures['summary'])})", ""]
    parts += ["## Claims from the literature", "", _md(claims_frame(claims, config)), "",
              "## Our own targets", "", _md(claims_frame(targets, config)), "", *sections,
              VERDICT_NOTE.format(margins=margins, alpha=st.ALPHA) + _few_seeds(ev), "",
              "## Provenance", ""]
    parts += [f"- **{k}**: {v}" for k, v in facts]
    sig = _sacrebleu(ev)
    if sig:
        parts.append(f"- **sacreBLEU**: {sig}")
    if done and done["missing"]:
        parts += ["", f"Still missing ({done['planned'] - done['finished']} runs):", ""]
        parts += [f"- {s}: {', '.join(c)}" for s, c in sorted(done["missing"].items(),
                                                              key=lambda kv: natural_key(kv[0]))]
    parts += ["", "## Evidence per claim", ""]
    for claim, j in [*claims, *targets]:
        parts += [f"### {claim.topic}", "", f"*{claim.source}*: {claim.claim}. **{j.verdict}**.", "",
                  f"Source checked: {claim.checked or '-'}." + "".join(f" {k}: {v}." for k, v in claim.ours.items()), ""]
        if claim.theirs:
            parts += [_md(setup_frame(claim, claim_rows(ev, claim))), ""]
        if j.comparisons:
            parts += [_md(comparisons_frame(j)), ""]
        parts += [f"- {note}" for note in j.notes] + [""]
    if ev.empty:
        return "\n".join(parts + ["_No completed runs yet._", ""])
    order = list(cells.names())
    families = ev.get(f"tags.{FAMILY_TAG}", pd.Series(index=ev.index, dtype=object)) \
        .fillna(ev["task"].map(lambda t: family_name(t, unknown="long_dependency")))
    parts += ["## Hyperparameters per task and cell", ""]
    for task, rows in ev.groupby("task"):
        parts += [f"### {task}", "", _md(hyper_table(rows, order)), ""]
    for family, heading in FAMILIES.items():
        tasks = sorted(set(ev.loc[families == family, "task"]))
        if not tasks:
            continue
        parts += [f"## {heading}", ""]
        for task in tasks:
            rows = ev[ev["task"] == task]
            goals = [readback.goal(r) for _, r in rows.groupby("setting")]
            parts += [f"### {task}", "", report.task_text(task, goals), "", _md(task_table(rows, order)), ""]
            stems = {f"learning_curves_{report_plots.slug(s)}" for s in rows["setting"]}
            parts += [f"![{p.stem}]({link(p)})" for p in curves if p.stem in stems] + [""]
        if family == "long_dependency":
            if figures["length"]:
                parts += ["### Metric against sequence length", "", f"![metric vs length]({link(figures['length'])})", ""]
            png, notes, length, samples = gradient
            parts += ["### Gradient flow", ""]
            if png:
                parts += [(f"‖∂L/∂x_t‖ against the lag, mean over {samples} test sequences, each cell's "
                          f"run at T = {length}, seed 0: dashed at initialisation, solid trained."), "",
                          f"![gradient flow]({link(png)})", ""]
            parts += [f"- {n}" for n in notes] + [""]
    if kept_plots:
        parts += ["## Plots kept from the page built on the MLflow store", "",
                  ("Learning curves and the gradient flow need the store (per-epoch metrics, trained "
                  "models); this export has neither, so the plots drawn from the store are kept:"), ""]
        parts += [f"- [{p.name}]({link(p)})" for p in kept_plots] + [""]
    return "\n".join(parts).rstrip() + "\n"


def _few_seeds(ev: pd.DataFrame) -> str:
    """The sentence for a study of at most 3 seeds per cell: no solved share can differ."""
    if ev.empty:
        return ""
    n = int(ev.groupby(["setting", "cell"]).size().median())
    return (f" With this study's {n} seeds no solved-share difference can be significant, hence "
            "most verdicts on this page are inconclusive.") if n <= 3 else ""


def _sacrebleu(ev: pd.DataFrame) -> str:
    """sacreBLEU's signature for the runs' settings (`data.lowercase`), this machine's version."""
    rows = ev[ev["task"] == "multi30k"] if not ev.empty else ev
    if rows.empty:
        return ""
    import sacrebleu

    lower = rows.get("params.data.lowercase", pd.Series(["True"])).astype(str).str.lower().eq("true").all()
    metric = sacrebleu.metrics.BLEU(lowercase=bool(lower))
    metric.corpus_score(["-"], [["-"]])  # the signature counts the references: one set
    return (f"`{metric.get_signature()}` ({'case-insensitive' if lower else 'cased'}, detokenised "
            "text; the version is this machine's, the runs logged theirs in their artifacts)")


def cmd_results(args) -> int:
    """`rnnlab results`: write the page; exit 1 without runs, 2 for bad arguments."""
    import sys

    command = f"rnnlab results --sweep {args.sweep}" \
        + "".join(f" --also {name}" for name in args.also) \
        + (f" --from {args.source}" if getattr(args, "source", None) else "") \
        + (f" --compare {args.compare}" if getattr(args, "compare", None) else "") \
        + (f" --link {args.link}" if getattr(args, "link", None) else "")
    for name in ("gradient_length", "gradient_samples"):
        if getattr(args, name) < 1:
            print(f"rnnlab results: --{name.replace('_', '-')} must be >= 1, got "
                  f"{getattr(args, name)}", file=sys.stderr)
            return 2
    try:
        result = write_results(args.sweep, args.output, source=getattr(args, "source", None),
                               sweep_file=args.sweep_file, gradients=not args.no_gradients,
                               gradient_length=args.gradient_length,
                               gradient_samples=args.gradient_samples, command=command,
                               also=args.also, dirty=getattr(args, "dirty", "flag"),
                               compare=getattr(args, "compare", None), link=getattr(args, "link", None))
    except (LookupError, FileNotFoundError) as err:
        print(f"rnnlab results: {err}", file=sys.stderr)
        return 1
    except ValueError as err:  # --sweep-file: unreadable, invalid or another sweep's
        print(f"rnnlab results: {err}", file=sys.stderr)
        return 2
    counts = pd.Series([j.verdict for _, j in result["claims"]]).value_counts()
    print(f"rnnlab results: wrote {result['page']} and {len(result['files']) - 1} files beside it; "
          "claims: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    return 0
