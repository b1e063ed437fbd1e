"""Markdown and HTML reports with PNG plots, written next to the results they describe.

Both formats come from the same sections (headings, text, tables, images),
so they never disagree. Accuracies are shown in percent with their
bootstrap confidence interval.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Sequence

Row = Sequence[object]


def pct(value: float | None, ci: Sequence[float] | None = None) -> str:
    """``12.5 [10.1, 14.9]``: a proportion in percent, with its interval when given."""
    if value is None:
        return "–"
    text = f"{100 * value:.1f}"
    return f"{text} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else text


def signed_pct(value: float, ci: Sequence[float] | None = None) -> str:
    """A difference in points with a sign, and its interval when given."""
    text = f"{100 * value:+.1f}"
    return f"{text} [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else text


class Report:
    """Sections in order; :meth:`write` renders them as ``report.md`` and ``report.html``."""

    def __init__(self, title: str):
        self.title = title
        self.sections: list[tuple[str, object]] = []

    def heading(self, text: str) -> None:
        """Add a section heading."""
        self.sections.append(("heading", text))

    def text(self, text: str) -> None:
        """Add a paragraph."""
        self.sections.append(("text", text))

    def table(self, header: Row, rows: Sequence[Row]) -> None:
        """Add a table (cells rendered with ``str``)."""
        self.sections.append(("table", ([str(h) for h in header], [[str(c) for c in r] for r in rows])))

    def image(self, path: Path, caption: str) -> None:
        """Add a plot written next to the report."""
        self.sections.append(("image", (Path(path).name, caption)))

    def markdown(self) -> str:
        """The report as Markdown."""
        out = [f"# {self.title}", ""]
        for kind, body in self.sections:
            if kind == "heading":
                out += [f"## {body}", ""]
            elif kind == "text":
                out += [body, ""]
            elif kind == "table":
                header, rows = body
                out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                out += ["| " + " | ".join(r) + " |" for r in rows] + [""]
            else:
                name, caption = body
                out += [f"![{caption}]({name})", ""]
        return "\n".join(out)

    def html(self) -> str:
        """The report as one self-contained HTML page."""
        e = html.escape
        out = [f"<!doctype html><meta charset='utf-8'><title>{e(self.title)}</title>",
               "<style>body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:collapse}"
               "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}img{max-width:100%}</style>",
               f"<h1>{e(self.title)}</h1>"]
        for kind, body in self.sections:
            if kind == "heading":
                out.append(f"<h2>{e(body)}</h2>")
            elif kind == "text":
                out.append(f"<p>{e(body)}</p>")
            elif kind == "table":
                header, rows = body
                out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
                out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
                out.append("</table>")
            else:
                name, caption = body
                out.append(f"<figure><img src='{e(name)}' alt='{e(caption)}'><figcaption>{e(caption)}</figcaption></figure>")
        return "\n".join(out) + "\n"

    def write(self, out: str | Path) -> Path:
        """Write ``report.md`` and ``report.html`` into ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(self.markdown())
        (out / "report.html").write_text(self.html())
        return out / "report.md"


def line_plot(path: str | Path, series: dict[str, tuple[Sequence, Sequence]], *, xlabel: str, ylabel: str,
              title: str, log2_x: bool = False, hlines: dict[str, float] | None = None,
              markers: bool = True) -> Path:
    """One line per series (x values may be level names); y in [0, 1] shown in percent.

    ``hlines`` draws labelled horizontal reference lines (e.g. a target accuracy a*).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, (xs, ys) in series.items():
        ax.plot(list(xs), [100 * y for y in ys], marker="o" if markers else None, label=label)
    for label, y in (hlines or {}).items():
        ax.axhline(100 * y, color="black", linestyle="--", linewidth=1, label=label)
    if log2_x:
        ax.set_xscale("log", base=2)
        ticks = sorted({x for xs, _ in series.values() for x in xs})
        ax.set_xticks(ticks, [str(t) for t in ticks])
    if all(isinstance(x, int) for xs, _ in series.values() for x in xs):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def _curve(summary: dict, prefix: str = "pass@") -> tuple[list[int], list[float]]:
    ks = sorted(int(k[len(prefix):]) for k in summary if k.startswith(prefix))
    return ks, [summary[f"{prefix}{k}"] for k in ks]


def _sampling_text(s: dict) -> str:
    return "greedy" if s["temperature"] == 0 else f"{s['n']} × T={s['temperature']}, top_p={s['top_p']}"


def eval_report(summary: dict[str, dict], out: str | Path, title: str) -> Path:
    """The report of ``scaffoldrl eval``: headline table, breakdowns, pass@k and per-level plots."""
    out = Path(out)
    report = Report(title)
    rows = []
    for name, s in summary.items():
        n = s["samples"]
        rows.append([name, s["problems"], _sampling_text(s["sampling"]), pct(s["score"], s["ci"][_headline(s)]),
                     pct(s.get(f"pass@{n}")) if n > 1 else "–", pct(s.get(f"maj@{n}")) if n > 1 else "–",
                     pct(s["answered"])])
    mean = sum(s["score"] for s in summary.values()) / len(summary)
    rows.append(["**average**", "", "", pct(mean), "", "", ""])
    report.table(["benchmark", "problems", "sampling", "score (avg@n or greedy pass@1) [95% CI]", "pass@n", "maj@n",
                  "answered"], rows)
    for name, s in summary.items():
        for part, label in (("by_difficulty", "level"), ("by_subject", "subject")):
            if part in s:
                report.heading(f"{name} by {label}")
                report.table([label, "problems", "score [95% CI]"],
                             [[k, v["problems"], pct(v["score"], v["ci"][_headline(v)])] for k, v in s[part].items()])
    curves = {name: _curve(s) for name, s in summary.items() if s["samples"] > 1}
    if curves:
        report.image(line_plot(out / "pass_at_k.png", curves, xlabel="k", ylabel="pass@k (%)",
                               title="pass@k", log2_x=True), "pass@k by benchmark")
    levels = {name: (list(s["by_difficulty"]), [v["score"] for v in s["by_difficulty"].values()])
              for name, s in summary.items() if "by_difficulty" in s}
    if levels:
        report.image(line_plot(out / "accuracy_by_difficulty.png", levels, xlabel="difficulty level",
                               ylabel="score (%)", title="Accuracy by difficulty"), "accuracy by difficulty level")
    return report.write(out)


def _headline(s: dict) -> str:
    return "pass@1" if s["samples"] == 1 else f"avg@{s['samples']}"


def analysis_report(result: dict, out: str | Path, title: str) -> Path:
    """The report of ``scaffoldrl analyze``: each hint's effect overall and per level, chains link by link."""
    out = Path(out)
    conditions, deltas = result["conditions"], result["deltas"]
    report = Report(title)
    report.text("Score: avg@n over the n samples of each problem (chain: the share of sampled chains whose every "
                "link is right). Δ: the condition minus plain on the same problems, with a paired bootstrap interval.")
    report.table(["condition", "problems", "score [95% CI]", "Δ vs plain [95% CI]"],
                 [[c, s["problems"], pct(s["score"], s["ci"][_headline(s)]),
                   signed_pct(deltas[c]["delta"], deltas[c]["ci"]) if c in deltas else "–"]
                  for c, s in conditions.items()])
    levels = sorted({lvl for s in conditions.values() for lvl in s.get("by_difficulty", {})}, key=float)
    if levels:
        report.heading("By difficulty level")
        rows = []
        for lvl in levels:
            row = [lvl]
            for c, s in conditions.items():
                v = s.get("by_difficulty", {}).get(lvl)
                d = deltas.get(c, {}).get("by_difficulty", {}).get(lvl)
                row.append("–" if v is None else pct(v["score"]) + (f" ({signed_pct(d['delta'])})" if d else ""))
            rows.append(row)
        report.table(["level", *(c if c == "plain" else f"{c} (Δ)" for c in conditions)], rows)
        series = {c: ([lv for lv in levels if lv in s.get("by_difficulty", {})],
                      [s["by_difficulty"][lv]["score"] for lv in levels if lv in s.get("by_difficulty", {})])
                  for c, s in conditions.items()}
        report.image(line_plot(out / "accuracy_by_difficulty.png", series, xlabel="difficulty level",
                               ylabel="score (%)", title="Accuracy by difficulty per condition"),
                     "accuracy by difficulty level per condition")
    if "links" in result:
        report.heading("Subproblem chains, link by link")
        report.table(["link", "chains reaching it", "right", "accuracy"],
                     [[i, v["reached"], v["correct"], pct(v["correct"] / v["reached"]) if v["reached"] else "–"]
                      for i, v in result["links"].items()])
    curves = {c: _curve(s) for c, s in conditions.items() if s["samples"] > 1}
    if curves:
        report.image(line_plot(out / "pass_at_k.png", curves, xlabel="k", ylabel="pass@k (%)",
                               title="pass@k per condition", log2_x=True), "pass@k per condition")
    return report.write(out)


def _level_row(name: str, ev: dict, levels: Sequence[str]) -> list[str]:
    return [name, *(pct(ev["by_level"].get(lv), ev["by_level_ci"].get(lv)) for lv in levels),
            pct(ev["hard"], ev["hard_ci"]), pct(ev["overall"], ev["overall_ci"])]


def _mean_curve(runs: Sequence[dict], name: str) -> tuple[list, list[float]]:
    """A training curve averaged over seeds, step by step (the steps every run logged)."""
    curves = [dict(zip(*run["curves"][name])) for run in runs if run["curves"].get(name, [[]])[0]]
    if not curves:
        return [], []
    steps = sorted(set.intersection(*(set(c) for c in curves)))
    return steps, [sum(c[s] for c in curves) / len(curves) for s in steps]


def _pm(mean: float | None, half: float | None, scale: float = 100, fmt: str = ".1f") -> str:
    if mean is None:
        return "–"
    return f"{scale * mean:{fmt}}" + (f" ± {scale * half:{fmt}}" if half is not None else "")


def demo_findings(summary: dict) -> list[str]:
    """What a demo run found, in plain sentences with its intervals (report and console)."""
    models, stage2, versus, seeds = summary["models"], summary["stage2"], summary.get("versus_grpo", {}), summary["seeds"]
    if "grpo" not in stage2:
        return []

    def mean_over_seeds(method: str, protocol: str) -> float:
        return sum(models[method if len(seeds) == 1 else f"{method}_seed{s}"][protocol]["hard"] for s in seeds) / len(seeds)

    over = "problems (one seed)" if len(seeds) == 1 else f"{len(seeds)} seeds"
    lines = []
    for protocol in [k for k in models["base"] if k != "path"]:
        parts = []
        for method, by_protocol in versus.items():
            d = by_protocol[protocol]
            ci = "" if not d["ci"] or d["ci"][0] is None else f" [{100 * d['ci'][0]:+.1f}, {100 * d['ci'][1]:+.1f}]"
            if d["delta"] is not None:
                parts.append(f"{method} {100 * d['delta']:+.1f}{ci}")
        how = "greedy" if protocol == "greedy" else protocol.replace("avg", "avg@")
        lines.append(f"Held-out hard levels, {how}, no hints: stage 1 {100 * models['stage1'][protocol]['hard']:.1f}%, "
                     f"GRPO {100 * mean_over_seeds('grpo', protocol):.1f}%; against GRPO, in points: "
                     f"{', '.join(parts)} (95% intervals over {over}; one that contains 0 shows no difference).")
    values = lambda m, key: [r[key] for r in stage2.get(m, {}).values() if r.get(key) is not None]  # noqa: E731
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    if values("grpo", "zero_variance_frac") and values("seele", "zero_variance_frac"):
        line = (f"Groups with no reward variance (no gradient): GRPO {100 * mean(values('grpo', 'zero_variance_frac')):.0f}%, "
                f"SEELE {100 * mean(values('seele', 'zero_variance_frac')):.0f}%")
        if values("seele", "accuracy_after_warm_up"):
            target = next(iter(stage2["seele"].values())).get("target") or 0.5
            line += (f"; SEELE's training accuracy after warm-up {mean(values('seele', 'accuracy_after_warm_up')):.2f} "
                     f"(a* = {target:g})")
        lines.append(line + ".")
    if len(seeds) < 5:
        lines.append("One run of a few seeds; the preregistered 5-seed study (`python bench/sample_efficiency.py "
                     "--preset full`) and what it found: docs/findings/stage2_study.md.")
    return lines


def demo_report(summary: dict, out: str | Path) -> Path:
    """The report of ``scaffoldrl demo``: held-out accuracy per level and method, stage-2 training, SPARKLE analysis.

    ``summary`` is what :func:`scaffoldrl.demo.run_demo` writes to ``summary.json``.
    Plots: accuracy per difficulty per model, stage-2 training accuracy vs a*,
    hint rate over steps, SEELE's per-round accuracy, zero-variance groups over steps.
    """
    from .metrics import across_seeds

    out = Path(out)
    preset, models, stage2 = summary["preset"], summary["models"], summary["stage2"]
    seeds, methods = summary["seeds"], list(summary["methods"])
    report = Report(f"scaffoldrl demo (preset {preset['name']})")
    mining = summary["mining"]
    report.text(
        f"Base model (SFT on levels 1-2) → stage 1: sparkle_stage1 recipe, {summary['stage1']['steps']} steps on "
        f"{preset['pool_per_level']} problems per level (levels 1-5) → hard problems: the pool problems of levels "
        f"{', '.join(map(str, preset['mine_levels']))} with pass@{mining['k']} = 0 at T = {mining['temperature']} "
        f"({mining['hard']} of {mining['candidates']}) → stage 2 from the stage-1 model on them, "
        f"{preset['stage2_steps']} steps × {preset['stage2_groups']} groups × {preset['group']} completions for every "
        f"method ({', '.join(f'{m}: {r}' for m, r in summary['methods'].items())}), seeds {seeds}.")

    findings = demo_findings(summary)
    if findings:
        report.heading("What this run found")
        for line in findings:
            report.text(line)

    report.heading("Base model: greedy accuracy by level and hint")
    hints = list(next(iter(summary["base_hint_table"].values())))
    report.table(["level", *hints], [[lv, *(pct(row[h]) for h in hints)]
                                     for lv, row in summary["base_hint_table"].items()])

    protocols = list(next(iter(models.values())))
    protocols = [name for name in protocols if name != "path"]
    for protocol in protocols:
        first = next(iter(models.values()))[protocol]
        levels = list(first["by_level"])
        how = "greedy pass@1" if first["samples"] == 1 else f"avg@{first['samples']} at T = {preset['eval_temperature']}"
        report.heading(f"Held-out accuracy by difficulty level ({how})")
        report.text(f"{len(levels)} levels of held-out problems; hard = levels {', '.join(first['hard_levels'])} "
                    "(hidden inverses), without hints. Brackets: 95% bootstrap interval over problems.")
        report.table(["model", *(f"level {lv}" for lv in levels), "hard", "all"],
                     [_level_row(name, m[protocol], levels) for name, m in models.items()])
        series = {name: (levels, [m[protocol]["by_level"][lv] for lv in levels])
                  for name, m in models.items() if name in ("base", "stage1")}
        for method in methods:
            runs = [models[f"{method}_seed{s}" if len(seeds) > 1 else method][protocol] for s in seeds]
            series[method] = (levels, [sum(r["by_level"][lv] for r in runs) / len(runs) for lv in levels])
        if all("exact" in m[protocol] for m in models.values()):
            report.text("Right answer with right reasoning: the share of samples whose answer is right *and* whose "
                        "response contains every reference step (on this domain each step's text is determined, so "
                        "a right answer without them is a lucky guess at the final value).")
            report.table(["model", *(f"level {lv}" for lv in levels), "hard"],
                         [[name, *(pct(m[protocol]["exact"].get(lv)) for lv in [*levels, "hard"])]
                          for name, m in models.items()])
        name = f"accuracy_by_level_{protocol}.png"
        report.image(line_plot(out / name, series, xlabel="difficulty level", ylabel="held-out accuracy (%)",
                               title=f"Held-out accuracy per level ({how})"),
                     f"held-out accuracy per difficulty level and model ({how}; stage 2: mean over seeds)")

    report.heading("Hard problems (mined with the stage-1 model)")
    report.table(["level", "candidates", f"pass@{mining['k']} = 0"],
                 [[lv, c["candidates"], c["hard"]] for lv, c in mining["by_level"].items()])

    report.heading("Stage 2 at equal rollout budgets")
    report.text("Rollouts: completions generated (forced hint tokens included in a completion). Train accuracy: "
                "correctness of the training rollouts (with their hints). Zero-variance: groups whose rewards were "
                "all equal (no gradient). |acc − a*|: per step, mean over steps. Held-out hard: greedy accuracy on "
                "the held-out hard levels without hints; ± is the 95% t-interval over seeds.")
    rows = []
    for method in methods:
        runs = [stage2[method][str(s)] for s in seeds]
        hard = [models[f"{method}_seed{s}" if len(seeds) > 1 else method]["greedy"]["hard"] for s in seeds]
        row = [method, summary["methods"][method], runs[0]["rollouts"],
               _pm(*across_seeds([r["seconds"] for r in runs]), scale=1, fmt=".0f")]
        for key in ("zero_variance_frac", "mean_accuracy", "mean_target_gap", "mean_hint_rate"):
            values = [r[key] for r in runs if r.get(key) is not None]
            row.append(_pm(*across_seeds(values), scale=1, fmt=".3f") if values else "–")
        row.append(_pm(*across_seeds(hard)))
        rows.append(row)
    report.table(["method", "recipe", "rollouts", "wall s", "zero-variance groups", "train accuracy", "|acc − a*|",
                  "hint rate", "held-out hard (%)"], rows)
    runs_of = {m: [stage2[m][str(s)] for s in seeds] for m in methods}
    target = next(iter(runs_of.values()))[0].get("target") or 0.5
    plots = (("accuracy", "training_accuracy.png", "training accuracy (%)", "Stage-2 training accuracy vs a*",
              {f"a* = {target:g}": target}),
             ("hint_rate", "hint_rate.png", "mean hint rate (%)", "Hint rate over steps", None),
             ("zero_variance", "zero_variance.png", "zero-variance groups (%)", "Groups without reward variance",
              None))
    for curve, name, ylabel, title, hlines in plots:
        series = {m: _mean_curve(runs, curve) for m, runs in runs_of.items()}
        series = {m: xy for m, xy in series.items() if xy[0]}
        if series:
            report.image(line_plot(out / name, series, xlabel="step", ylabel=ylabel, title=title, hlines=hlines,
                                   markers=False), f"{title.lower()} (mean over seeds)")
    for method, runs in runs_of.items():
        rounds = sorted(k for k in runs[0]["curves"] if k.startswith("accuracy_round"))
        if len(rounds) > 1:
            series = {f"round {k[len('accuracy_round'):]}": _mean_curve(runs, k) for k in rounds}
            report.image(line_plot(out / f"round_accuracy_{method}.png", series, xlabel="step",
                                   ylabel="training accuracy (%)", title=f"{method}: accuracy per sampling round",
                                   hlines={f"a* = {target:g}": target}, markers=False),
                         f"{method}: accuracy of each sampling round (the hint is refitted between rounds)")

    if summary.get("analysis"):
        report.heading("SPARKLE's fine-grained analysis (held-out problems, greedy)")
        conditions = list(next(iter(summary["analysis"].values()))["conditions"])
        rows = []
        for name, result in summary["analysis"].items():
            row = [name]
            for c in conditions:
                s, d = result["conditions"].get(c), result["deltas"].get(c)
                row.append("–" if s is None else pct(s["score"]) + (f" ({signed_pct(d['delta'])})" if d else ""))
            rows.append(row)
        report.table(["model", *(c if c == "plain" else f"{c} (Δ vs plain)" for c in conditions)], rows)
        levels = sorted({lv for r in summary["analysis"].values() for lv in
                         r["conditions"].get("plain", {}).get("by_difficulty", {})}, key=float)
        if levels:
            report.table(["model", "level", *conditions],
                         [[name, lv, *(pct(r["conditions"][c].get("by_difficulty", {}).get(lv, {}).get("score"))
                                       if c in r["conditions"] else "–" for c in conditions)]
                          for name, r in summary["analysis"].items() for lv in levels])
        report.text("Each model's own analysis report (per-level plots, chains link by link): "
                    + ", ".join(f"analysis/{name}/report.md" for name in summary["analysis"]) + ".")

    report.heading("Stage wall times")
    report.table(["stage", "seconds"], [[k, f"{v:.0f}"] for k, v in summary["stage_seconds"].items()])
    return report.write(out)


# -- the same results in the terminal (rich tables) ------------------------------------------------------------------

def base_console_table(hint_table: dict, problems_per_level: int, candidates: int, hidden_levels: Sequence[int]):
    """The base model's hint table (:func:`scaffoldrl.base_model.hint_table`) as a rich table."""
    from rich.table import Table

    hints = list(next(iter(hint_table.values())))
    table = Table(title="Base model: greedy accuracy on held-out problems by level and hint",
                  caption=f"{problems_per_level} problems per level. Levels {', '.join(map(str, hidden_levels))} "
                          f"need 1-3 hidden inverses, each known to the base as one of {candidates} values")
    table.add_column("level")
    for h in hints:
        table.add_column(f"hint: {h}", justify="right")
    for level, row in hint_table.items():
        table.add_row(level, *(f"{100 * row[h]:.0f}%" for h in hints))
    return table


def demo_console(summary: dict) -> list:
    """The demo's held-out and stage-2 tables and its closing line, as rich renderables for a console."""
    from rich.table import Table

    greedy = summary["models"]["base"]["greedy"]
    levels = list(greedy["by_level"])
    held_out = Table(title=f"Held-out accuracy by level, greedy, no hints (hard = levels "
                           f"{', '.join(greedy['hard_levels'])})")
    for column in ("model", *(f"L{lv}" for lv in levels), "hard", "all"):
        held_out.add_column(column, justify="left" if column == "model" else "right")
    for name, m in summary["models"].items():
        g = m["greedy"]
        held_out.add_row(name, *(f"{100 * g['by_level'][lv]:.0f}%" for lv in levels), f"{100 * g['hard']:.1f}%",
                         f"{100 * g['overall']:.1f}%")
    stage2 = Table(title="Stage 2 on the mined hard problems at equal rollouts (mean over seeds)")
    for column in ("method", "rollouts", "wall s", "zero-var groups", "train acc", "|acc - a*|", "hint rate"):
        stage2.add_column(column, justify="left" if column == "method" else "right")
    for method, runs in summary["stage2"].items():
        def mean(key):
            values = [r[key] for r in runs.values() if r.get(key) is not None]
            return f"{sum(values) / len(values):.3f}" if values else "-"
        first = next(iter(runs.values()))
        stage2.add_row(method, str(first["rollouts"]), f"{sum(r['seconds'] for r in runs.values()) / len(runs):.0f}",
                       mean("zero_variance_frac"), mean("mean_accuracy"), mean("mean_target_gap"),
                       mean("mean_hint_rate"))
    closing = (f"this run took {summary['wall_seconds_this_run']:.0f}s (base model stages "
               f"{summary['base_seconds']:.0f}s); highest held-out hard mean in stage 2: {summary['best_stage2']}")
    return [held_out, stage2, *demo_findings(summary), closing]
