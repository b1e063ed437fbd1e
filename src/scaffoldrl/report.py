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
    text = f"{100 * value:+.1f}"
    return f"{text} [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else text


class Report:
    """Sections in order; :meth:`write` renders them as ``report.md`` and ``report.html``."""

    def __init__(self, title: str):
        self.title = title
        self.sections: list[tuple[str, object]] = []

    def heading(self, text: str) -> None:
        self.sections.append(("heading", text))

    def text(self, text: str) -> None:
        self.sections.append(("text", text))

    def table(self, header: Row, rows: Sequence[Row]) -> None:
        self.sections.append(("table", ([str(h) for h in header], [[str(c) for c in r] for r in rows])))

    def image(self, path: Path, caption: str) -> None:
        self.sections.append(("image", (Path(path).name, caption)))

    def markdown(self) -> str:
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
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(self.markdown())
        (out / "report.html").write_text(self.html())
        return out / "report.md"


def line_plot(path: str | Path, series: dict[str, tuple[Sequence, Sequence]], *, xlabel: str, ylabel: str,
              title: str, log2_x: bool = False) -> Path:
    """One line per series (x values may be level names); y in [0, 1] shown in percent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, (xs, ys) in series.items():
        ax.plot(list(xs), [100 * y for y in ys], marker="o", label=label)
    if log2_x:
        ax.set_xscale("log", base=2)
        ticks = sorted({x for xs, _ in series.values() for x in xs})
        ax.set_xticks(ticks, [str(t) for t in ticks])
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
