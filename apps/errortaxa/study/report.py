"""Plots (matplotlib, PNG + SVG) and a self-contained HTML report of a study."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from errortaxa.engine.outputs import open_binary, write_text

if TYPE_CHECKING:
    from errortaxa.study.diff import DiffResult
    from errortaxa.study.study import StudyResult
    from matplotlib.figure import Figure

PathLike = str | os.PathLike[str]
PLOTS = ("error_share_vs_mla", "composition", "organism_vs_artifact", "error_consistency", "factors")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colour_groups(table: pd.DataFrame, column: str | None) -> tuple[list[tuple[str, np.ndarray]], bool]:
    """(label, row mask) per colour group; numeric columns are split at their tertiles."""
    if column is None or column not in table.columns:
        return [("all models", np.ones(len(table), bool))], False
    values = table[column]
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > 6:
        q = values.quantile([1 / 3, 2 / 3]).to_numpy()
        bins = np.digitize(values.to_numpy(), q)
        names = [f"{column} <= {q[0]:.3g}", f"{q[0]:.3g} < {column} <= {q[1]:.3g}", f"{column} > {q[1]:.3g}"]
        return [(names[b], bins == b) for b in range(3) if (bins == b).any()], True
    labels = values.astype(str).fillna("unknown")
    return [(f"{column}={v}", (labels == v).to_numpy()) for v in sorted(labels.unique())], True


def _trend(ax: Any, x: np.ndarray, y: np.ndarray, colour: Any) -> None:
    """A least-squares line through the points, drawn only where it lies in [0, 1] (shares)."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() >= 3 and np.ptp(x[ok]) > 0:
        slope, intercept = np.polyfit(x[ok], y[ok], 1)
        xs = np.linspace(x[ok].min(), x[ok].max(), 200)
        ys = slope * xs + intercept
        ax.plot(xs, np.where((ys >= 0) & (ys <= 1), ys, np.nan), color=colour, linewidth=1.5)


def trend_fits(result: StudyResult, color_by: str | None = None) -> pd.DataFrame:
    """The linear trends the plots draw: per plot, panel (category or group) and colour group, the
    slope with its 95% interval and the predicted share at 80/90/95/98% multi-label accuracy
    (:func:`errortaxa.study.stats.linear_trend`); the table ``trends.csv``."""
    from errortaxa.study.stats import linear_trend

    table = result.table
    rows: list[dict[str, Any]] = []
    if not len(table):
        return pd.DataFrame(rows)
    groups, _ = _colour_groups(table, color_by)
    x_all = table["all.mla"].to_numpy(dtype=float)
    for cat in result.error_categories:
        column = f"error_share.{cat}"
        if column not in table.columns or not np.nansum(table[column].to_numpy(dtype=float)) > 0:
            continue
        y = table[column].to_numpy(dtype=float)
        for label, mask in groups:
            rows.append({"plot": "error_share_vs_mla", "panel": cat, "group": label,
                         **linear_trend(x_all[mask], y[mask])})
    for group in ("organism_by_label", "artifact_by_label"):
        if f"{group}.mla" not in table.columns:
            continue
        for cat, x, y in _group_error_shares(table, group, result.error_categories):
            rows.append({"plot": "organism_vs_artifact", "panel": group, "group": cat, **linear_trend(x, y)})
    out = pd.DataFrame(rows)
    out["models"] = out["models"].astype(np.int64)
    return out


def category_colours(result: StudyResult) -> dict[str, Any]:
    """One colour per category of the study, the same in every plot."""
    plt = _pyplot()
    cmap = plt.get_cmap("tab20")
    return {cat: cmap(k % 20) for k, cat in enumerate(result.categories)}


def composition_models(result: StudyResult, max_models: int = 60) -> pd.DataFrame:
    """The models the composition plot shows, sorted by MLA: all, or ``max_models`` evenly spaced."""
    table = result.table.sort_values("all.mla").reset_index(drop=True)
    if len(table) > max_models:
        table = table.iloc[np.linspace(0, len(table) - 1, max_models).round().astype(int)]
    return table


def plot_error_share_vs_mla(result: StudyResult, color_by: str | None = None) -> Figure:
    """Share of each error category (of all errors) against multi-label accuracy, one panel per
    category, coloured by a metadata column, with a fitted linear trend per colour group."""
    plt = _pyplot()
    cats = [c for c in result.error_categories if f"error_share.{c}" in result.table.columns]
    cats = [c for c in cats if np.nansum(result.table[f"error_share.{c}"].to_numpy()) > 0] or cats[:1]
    cols = min(3, max(len(cats), 1))
    rows = int(np.ceil(len(cats) / cols)) if cats else 1
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    groups, has_legend = _colour_groups(result.table, color_by)
    cmap = plt.get_cmap("tab10")
    colours = category_colours(result)
    x_all = result.table["all.mla"].to_numpy(dtype=float)
    for k, cat in enumerate(cats):
        ax = axes[k // cols][k % cols]
        y_all = result.table[f"error_share.{cat}"].to_numpy(dtype=float)
        for g, (label, mask) in enumerate(groups):
            colour = cmap(g % 10) if has_legend else colours[cat]
            ax.scatter(x_all[mask], y_all[mask], s=10, alpha=0.6, color=colour, label=label)
            _trend(ax, x_all[mask], y_all[mask], colour)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(cat.replace("_", " "))
        ax.set_xlabel("multi-label accuracy")
        ax.set_ylabel("share of errors")
        ax.grid(alpha=0.3)
    for k in range(len(cats), rows * cols):
        axes[k // cols][k % cols].axis("off")
    if has_legend:
        axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(f"Error categories vs accuracy ({len(result.table)} models, {result.taxonomy})")
    fig.tight_layout()
    return fig


def plot_composition(result: StudyResult, max_models: int = 60) -> Figure:
    """Error-category composition per model (stacked bars of shares of all samples), models
    sorted by multi-label accuracy; with more than ``max_models`` models an evenly spaced
    selection is shown, and the title says so."""
    plt = _pyplot()
    table = composition_models(result, max_models)
    cats = [c for c in result.error_categories if f"all.share.{c}" in table.columns]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.18 * len(table) + 3), 4.5))
    bottom = np.zeros(len(table))
    colours = category_colours(result)
    x = np.arange(len(table))
    for cat in cats:
        share = np.nan_to_num(table[f"all.share.{cat}"].to_numpy(dtype=float))
        ax.bar(x, share, bottom=bottom, color=colours[cat], label=cat.replace("_", " "), width=0.85)
        bottom += share
    ax.set_xticks(x)
    ax.set_xticklabels(table["model"].astype(str), rotation=90, fontsize=6)
    ax.set_ylabel("share of images (errors, by category)")
    shown = "" if len(table) == len(result.table) else \
        f"; {len(table)} of {len(result.table)} models shown, evenly spaced"
    ax.set_title(f"Error composition per model (sorted by multi-label accuracy{shown})")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def plot_organism_vs_artifact(result: StudyResult) -> Figure:
    """Two panels, organisms and artifacts: per error category, its share of the group's errors
    against the group's multi-label accuracy, with a trend per category."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    colours = category_colours(result)
    table = result.table
    for ax, group in zip(axes, ("organism_by_label", "artifact_by_label"), strict=True):
        if f"{group}.mla" not in table.columns:
            ax.axis("off")
            continue
        for cat, x, y in _group_error_shares(table, group, result.error_categories):
            ax.scatter(x, y, s=8, alpha=0.5, color=colours[cat], label=cat.replace("_", " "))
            _trend(ax, x, y, colours[cat])
        ax.set_title(f"{group.split('_')[0]}s (an image in the group when any label is)")
        ax.set_xlabel("multi-label accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of the group's errors")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_error_consistency(result: StudyResult) -> Figure:
    """Heat map of the error consistency (Cohen's kappa) of every pair of models, the models in the
    leaf order of an average-linkage clustering on 1 - kappa."""
    from errortaxa.study.consistency import cluster_order

    assert result.consistency is not None
    plt = _pyplot()
    kappa = result.consistency.kappa
    order = cluster_order(kappa)
    names = result.table["model"].astype(str).to_numpy()[order]
    size = min(12.0, 4 + 0.12 * len(order))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(kappa[np.ix_(order, order)], cmap="viridis", vmin=min(0.0, float(np.nanmin(kappa))),
                      vmax=1.0, interpolation="nearest")
    if len(order) <= 60:
        ax.set_xticks(np.arange(len(order)))
        ax.set_yticks(np.arange(len(order)))
        ax.set_xticklabels(names, rotation=90, fontsize=6)
        ax.set_yticklabels(names, fontsize=6)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=ax, label="error consistency (kappa)")
    ax.set_title(f"Error consistency of {len(order)} models (clustered)")
    fig.tight_layout()
    return fig


def plot_factors(result: StudyResult) -> Figure:
    """Heat map of the factor ratios with all models' errors pooled: per error category (rows, all
    errors first) and factor (columns), the share of the errors whose image carries the factor over
    the factor's share among the annotated images (1: as often as in the images)."""
    from errortaxa.study.factors import pooled_ratios

    assert result.factors is not None
    plt = _pyplot()
    ratios = pooled_ratios(result.factors.table)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * ratios.shape[1], 1.5 + 0.45 * ratios.shape[0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        data = np.log2(np.clip(ratios.to_numpy(dtype=float), 1 / 16, 16))  # colours saturate at 16x
    bound = max(1.0, float(np.nanmax(np.abs(data)))) if np.isfinite(data).any() else 1.0
    image = ax.imshow(data, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    for (i, j), value in np.ndenumerate(ratios.to_numpy(dtype=float)):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6)
    ax.set_xticks(np.arange(ratios.shape[1]))
    ax.set_xticklabels([c.replace("_", " ") for c in ratios.columns], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(np.arange(ratios.shape[0]))
    ax.set_yticklabels([c.replace("_", " ") for c in ratios.index], fontsize=7)
    fig.colorbar(image, ax=ax, label="log2 error ratio")
    ax.set_title(f"Errors by {result.factors.provider} factor ({result.factors.images} annotated images, "
                 f"{len(result.table)} models pooled)", fontsize=9)
    fig.tight_layout()
    return fig


def write_plots(result: StudyResult, out_dir: PathLike, color_by: str | None = None) -> dict[str, str]:
    """All plots as PNG and SVG; returns kind -> path."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if color_by is None and result.metadata_columns:
        color_by = result.metadata_columns[0]
    figures = {
        "error_share_vs_mla": plot_error_share_vs_mla(result, color_by),
        "composition": plot_composition(result),
        "organism_vs_artifact": plot_organism_vs_artifact(result),
    }
    if result.factors is not None:
        figures["factors"] = plot_factors(result)
    if result.consistency is not None and len(result.table) >= 2:
        figures["error_consistency"] = plot_error_consistency(result)
    paths: dict[str, str] = {}
    for name, fig in figures.items():
        for ext in ("png", "svg"):
            path = out / f"{name}.{ext}"
            with open_binary(path) as stream:
                fig.savefig(stream, format=ext, dpi=110 if ext == "png" else None)
            paths[f"{name}.{ext}"] = str(path)
        plt.close(fig)
    return paths


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
div.scroll{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;font-size:12px;margin:1em 0}
td.not-evaluated{color:#888;font-style:italic}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f0f0f0} td.l,th.l{text-align:left} img{max-width:100%;border:1px solid #eee}
div.plot-row{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
div.plot-row figure{flex:1 1 640px;min-width:0;margin:0} div.plot-row div.scroll{flex:1 1 420px;min-width:0}
"""


def _fmt(x: Any) -> str:
    if isinstance(x, float | np.floating):
        return "" if not np.isfinite(x) else f"{x:.4f}"
    return html.escape(str(x))


def _not_evaluated(result: StudyResult) -> dict[str, str]:
    """Per category decided by a rule that was not evaluated on some headline image of some
    model (no OOV provider, a missing sample list), that rule's id."""
    t = result.table
    out: dict[str, str] = {}
    for column in t.columns:
        if column.startswith("all.not_evaluated.") and t[column].sum() > 0:
            rule = column.removeprefix("all.not_evaluated.")
            out[result.rule_values.get(rule, rule)] = rule
    return out


def _share_cell(row: Any, category: str, unknown: dict[str, str]) -> str:
    """An error share, or "not evaluated" where the model's rule for it was not evaluated."""
    rule = unknown.get(category)
    if rule is not None and row[f"all.not_evaluated.{rule}"] > 0:
        return (f"<td class='not-evaluated' title='rule {html.escape(rule)} not evaluated on "
                f"{int(row[f'all.not_evaluated.{rule}'])} images'>not evaluated</td>")
    return f"<td>{_fmt(row[f'error_share.{category}'])}</td>"


def _unsure(row: Any, stat: str) -> int:
    """A model's headline images on which a rule not evaluated might change its figure ``stat``
    (the ``all.STAT_not_evaluated`` column; the MLA share shares the MLA's)."""
    return int(row.get(f"all.{'mla' if stat == 'mla_share' else stat}_not_evaluated", 0))


def _figure_cells(unsure: int, *texts: str) -> str:
    """One cell per text (a figure, its interval), or "not evaluated" where ``unsure`` images of the
    figure had a rule not evaluated that might change it."""
    if unsure > 0:
        title = f"a rule not evaluated on {unsure} images might change it"
        return "".join(f"<td class='not-evaluated' title='{title}'>not evaluated</td>" for _ in texts)
    return "".join(f"<td>{text}</td>" for text in texts)


def render_html(result: StudyResult, plot_paths: dict[str, str] | None = None,
                diff: DiffResult | None = None, max_rows: int = 200, trends: pd.DataFrame | None = None) -> str:
    """One self-contained HTML page: summary, per-model table, plots (base64 PNG) with their trend
    fits (``trends``, :func:`trend_fits`) beside them, most common errors per category with class
    names, the errors shared across models, and the taxonomy comparison (``diff``, default the
    study's own ``result.diff``) when there is one."""
    t = result.table
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             f"<title>ErrorTaxa study: {html.escape(result.taxonomy)}</title><style>{_CSS}</style></head><body>",
             f"<h1>ErrorTaxa study ({html.escape(result.taxonomy)})</h1>",
             f"<p id='summary'>{len(t)} models &times; {result.images} images; classified in "
             f"{result.seconds:.1f} s. Accuracies are on the non-problematic images, with 95% "
             "Clopper-Pearson intervals (the per-class means, MLA and its variants, with percentile-bootstrap "
             f"intervals over {result.resamples} resamples of the images where computed); error shares are of "
             "each model's errors.</p>"]
    # per-model table
    meta = result.metadata_columns
    shares = [c for c in result.error_categories if f"error_share.{c}" in t.columns]
    unknown = _not_evaluated(result)
    boot = "all.mla_lo" in t.columns
    head = ["model", *meta, "images", "top-1", "top-1 95% CI", "MLA", *(["MLA 95% CI (bootstrap)"] if boot else []),
            "MLA share", "MLA share 95% CI",
            "MLA, minor errors correct", "MLA, explainable errors correct", *[f"{c} (share of errors)" for c in shares]]
    if "image_list.accuracy" in t.columns:
        head += ["image list accuracy"]
    parts.append("<h2>Models</h2><div class='scroll'><table id='models'><tr>"
                 f"{''.join(f'<th>{html.escape(h)}</th>' for h in head)}</tr>")
    order = t.sort_values("all.mla", ascending=False).head(max_rows)
    for _, row in order.iterrows():
        cells = [f"<td class='l'>{_fmt(row['model'])}</td>", *[f"<td class='l'>{_fmt(row[m])}</td>" for m in meta],
                 f"<td>{int(row['all.samples'])}</td>", f"<td>{_fmt(row['all.top1'])}</td>",
                 f"<td>[{_fmt(row['all.top1_lo'])}, {_fmt(row['all.top1_hi'])}]</td>",
                 _figure_cells(_unsure(row, "mla"), _fmt(row["all.mla"]),
                               *([f"[{_fmt(row['all.mla_lo'])}, {_fmt(row['all.mla_hi'])}]"] if boot else []),
                               _fmt(row["all.mla_share"]),
                               f"[{_fmt(row['all.mla_share_lo'])}, {_fmt(row['all.mla_share_hi'])}]"),
                 *[_figure_cells(_unsure(row, stat), _fmt(row[f"all.{stat}"]))
                   for stat in ("mla_minor", "mla_explainable")],
                 *[_share_cell(row, c, unknown) for c in shares]]
        if "image_list.accuracy" in t.columns:
            cells.append(f"<td>{_fmt(row['image_list.accuracy'])}</td>")
        parts.append(f"<tr class='model-row'>{''.join(cells)}</tr>")
    parts.append("</table></div>")
    if len(t) > max_rows:
        parts.append(f"<p>({len(t) - max_rows} more models in models.csv)</p>")
    parts.extend(_baseline_html(result, max_rows))
    parts.extend(_sources_html(result))
    # plots
    if plot_paths:
        parts.append("<h2>Plots</h2>")
        for name in PLOTS:
            png = plot_paths.get(f"{name}.png")
            if png:
                data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
                note = ""
                if name == "composition" and len(composition_models(result)) < len(t):
                    note = (f" ({len(composition_models(result))} of {len(t)} models shown, evenly spaced by "
                            "multi-label accuracy; every model is in the table and models.csv)")
                parts.append(f"<div class='plot-row'><figure><img id='plot-{name}' alt='{name}' "
                             f"src='data:image/png;base64,{data}'><figcaption>{name.replace('_', ' ')}"
                             f"{html.escape(note)}</figcaption></figure>{_trends_html(trends, name)}"
                             f"{_consistency_html(result) if name == 'error_consistency' else ''}"
                             f"{_factors_html(result) if name == 'factors' else ''}</div>")
    # most common errors
    parts.append("<h2>Most common errors per category</h2>")
    for cat, entries in result.top_errors.items():
        parts.append(f"<h3 class='category'>{html.escape(cat)}</h3><div class='scroll'><table class='top-errors' "
                     f"data-category='{html.escape(cat)}'><tr><th class='l'>target</th><th class='l'>prediction</th>"
                     "<th>errors (all models)</th><th class='l'>example images</th></tr>")
        for e in entries:
            parts.append(f"<tr><td class='l'>{e['target']} {html.escape(e['target_name'])}</td>"
                         f"<td class='l'>{e['pred']} {html.escape(e['pred_name'])}</td><td>{e['errors']}</td>"
                         f"<td class='l'>{html.escape(', '.join(e['images']))}</td></tr>")
        parts.append("</table></div>")
    parts.extend(_shared_html(result))
    parts.extend(_classes_html(result))
    diff = diff if diff is not None else result.diff
    if diff is not None:
        parts.extend(_diff_html(diff, len(t)))
    parts.append("</body></html>")
    return "\n".join(parts)


def _factors_html(result: StudyResult) -> str:
    """Where the factor annotations come from (``p#factors-source``: their licence included)."""
    if result.factors is None:
        return ""
    return (f"<p id='factors-source'>{result.factors.images} headline images annotated; "
            f"annotations: {html.escape(result.factors.source)}. factors.csv has every model's "
            "shares.</p>")


def _consistency_html(result: StudyResult) -> str:
    """Summary of the pairwise error consistency (``table#consistency``): per measure (all top-1
    errors, then each category) the mean, median, min and max kappa over all pairs of models."""
    pairs = result.consistency
    if pairs is None:
        return ""
    upper = np.triu_indices(pairs.kappa.shape[0], 1)
    rows = [("all errors", pairs.kappa), *((cat, m[0]) for cat, m in pairs.per_category.items())]
    out = ["<div class='scroll'><table id='consistency'><tr><th class='l'>errors</th><th>pairs</th>"
           "<th>mean kappa</th><th>median</th><th>min</th><th>max</th></tr>"]
    for name, matrix in rows:
        kappa = matrix[upper]
        finite = kappa[np.isfinite(kappa)]
        cells = "".join(f"<td>{_fmt(float(f(finite)) if finite.size else float('nan'))}</td>"
                        for f in (np.mean, np.median, np.min, np.max))
        out.append(f"<tr class='consistency'><td class='l'>{html.escape(name)}</td><td>{finite.size}</td>{cells}</tr>")
    out.append("</table></div>")
    return "".join(out)


def _trends_html(trends: pd.DataFrame | None, plot: str) -> str:
    """The trend fits of one plot (``table.trends``): slope with its 95% interval and the predicted
    share at each accuracy of :data:`errortaxa.study.stats.TREND_AT`."""
    from errortaxa.study.stats import TREND_AT

    if trends is None or not len(trends):
        return ""
    rows = trends[trends["plot"] == plot]
    if not len(rows):
        return ""
    esc = html.escape

    def ci(row: Any, key: str) -> str:
        return f"{_fmt(row[key])} [{_fmt(row[key + '_lo'])}, {_fmt(row[key + '_hi'])}]"

    head = "".join(f"<th>share at {a:.0%}</th>" for a in TREND_AT)
    out = [f"<div class='scroll'><table class='trends' data-plot='{esc(plot)}'><tr><th class='l'>panel</th>"
           f"<th class='l'>group</th><th>models</th><th>slope [95% CI]</th>{head}</tr>"]
    for _, row in rows.iterrows():
        cells = "".join(f"<td>{ci(row, f'at_{a:.2f}')}</td>" for a in TREND_AT)
        out.append(f"<tr class='trend'><td class='l'>{esc(str(row['panel']))}</td><td class='l'>"
                   f"{esc(str(row['group']))}</td><td>{int(row['models'])}</td><td>{ci(row, 'slope')}</td>{cells}</tr>")
    out.append("</table></div>")
    return "".join(out)


def _baseline_html(result: StudyResult, max_rows: int) -> list[str]:
    """With a baseline: every model's difference from it in each headline statistic, with the paired
    bootstrap interval and McNemar's p (``table#baseline``, rows ``tr.vs-baseline``)."""
    t = result.table
    if result.baseline is None or "vs_baseline.mla" not in t.columns:
        return []
    from errortaxa.study.intervals import HEADLINE

    labels = {"top1": "top-1", "mla_share": "MLA share", "mla": "MLA", "mla_minor": "MLA, minor correct",
              "mla_explainable": "MLA, explainable correct"}
    head = "".join(f"<th>{labels[s]} &minus; baseline [95% CI]</th><th>{labels[s]} McNemar p</th>" for s in HEADLINE)
    parts = [f"<h2 id='vs-baseline'>Differences from {html.escape(result.baseline)}</h2>",
             "<p>Each model's value minus the baseline's, the percentile interval of the differences over the "
             "same bootstrap resamples (paired), and the exact McNemar p-value of the per-image correctness.</p>",
             f"<div class='scroll'><table id='baseline'><tr><th class='l'>model</th>{head}</tr>"]
    base = t.loc[t["model"] == result.baseline].iloc[0]
    for _, row in t.sort_values("all.mla", ascending=False).head(max_rows).iterrows():
        cells = "".join(_figure_cells(_unsure(row, s) + _unsure(base, s),
                                      f"{_fmt(row[f'vs_baseline.{s}'])} [{_fmt(row[f'vs_baseline.{s}_lo'])}, "
                                      f"{_fmt(row[f'vs_baseline.{s}_hi'])}]", _fmt_p(row[f"vs_baseline.{s}_p"]))
                        for s in HEADLINE)
        parts.append(f"<tr class='vs-baseline'><td class='l'>{_fmt(row['model'])}</td>{cells}</tr>")
    parts.append("</table></div>")
    return parts


def _fmt_p(p: Any) -> str:
    return "" if not np.isfinite(p) else f"{p:.2g}"


def _classes_html(result: StudyResult, k: int = 20) -> list[str]:
    """Classes and superclasses (with ``--classes``): the ``k`` classes most often among the models'
    worst (``table#worst-classes``), the worst classes of the best models (``table#worst-per-model``)
    and per superclass the spread of its MLA over the models (``table#superclasses``)."""
    breakdown = result.classes
    if breakdown is None:
        return []
    esc = html.escape
    worst = breakdown.worst
    parts = ["<h2 id='classes'>Classes</h2>",
             f"<p>Each model's {breakdown.worst_k} worst classes among those with at least {breakdown.min_images} "
             "images, ranked by the upper end of the 95% Clopper-Pearson interval of their MLA share "
             "(classes.parquet, worst_classes.csv, superclasses.parquet).</p>"]
    often = (worst.groupby(["class", "name"], observed=True)
             .agg(models=("model", "size"), mla=("mla", "mean"), images=("images", "mean"))
             .reset_index().sort_values(["models", "mla"], ascending=[False, True]).head(k))
    parts.append("<div class='scroll'><table id='worst-classes'><tr><th class='l'>class</th><th>models with it "
                 "among their worst</th><th>mean MLA share</th><th>images</th></tr>")
    for row in often.itertuples(index=False):
        parts.append(f"<tr class='worst-class'><td class='l'>{row[0]} {esc(str(row[1]))}</td><td>{row.models}</td>"
                     f"<td>{_fmt(float(row.mla))}</td><td>{_fmt(float(row.images))}</td></tr>")
    parts.append("</table></div>")
    best = result.table.sort_values("all.mla", ascending=False)["model"].head(10).astype(str).tolist()
    parts.append("<h3>Worst classes of the ten best models</h3><div class='scroll'><table id='worst-per-model'>"
                 "<tr><th class='l'>model</th><th class='l'>worst classes (MLA share [95% CI], images)</th></tr>")
    by_model = dict(list(worst.groupby("model", observed=True)))
    for model in best:
        rows = by_model.get(model, worst.head(0))
        text = "; ".join(f"{r.name} {_fmt(float(r.mla))} [{_fmt(float(r.mla_lo))}, {_fmt(float(r.mla_hi))}], "
                         f"{r.images}" for r in rows.itertuples(index=False))
        parts.append(f"<tr><td class='l'>{esc(model)}</td><td class='l'>{esc(text)}</td></tr>")
    parts.append("</table></div>")
    supers = breakdown.superclasses
    if len(supers):
        spread = (supers.groupby("superclass").agg(classes=("classes", "max"), images=("images", "max"),
                                                   mean=("mla", "mean"), low=("mla", "min"), high=("mla", "max"))
                  .reset_index().sort_values("mean"))
        parts.append("<h3>Superclasses</h3><div class='scroll'><table id='superclasses'><tr><th class='l'>superclass"
                     "</th><th>classes</th><th>images</th><th>MLA, mean over models</th><th>lowest</th>"
                     "<th>highest</th></tr>")
        for r in spread.itertuples(index=False):
            parts.append(f"<tr class='superclass'><td class='l'>{esc(str(r.superclass))}</td><td>{r.classes}</td>"
                         f"<td>{r.images}</td><td>{_fmt(float(r.mean))}</td><td>{_fmt(float(r.low))}</td>"
                         f"<td>{_fmt(float(r.high))}</td></tr>")
        parts.append("</table></div>")
    return parts


def _shared_html(result: StudyResult, k: int = 10) -> list[str]:
    """Errors shared across models: per category the ``k`` (image, prediction) errors most models
    make (``table.shared-errors``), and the images every model gets wrong (``table#all-wrong``)."""
    common = result.common_errors
    if common is None or result.image_errors is None:
        return []
    esc = html.escape
    models = len(result.table)
    names = result.taxonomy_names
    parts = ["<h2 id='shared-errors'>Errors shared across models</h2>",
             f"<p>The (image, prediction) errors most of the {models} models make, per category "
             "(common_errors.csv has them all; images.csv counts the models wrong on each image).</p>"]
    for cat, rows in common.groupby("category", observed=True, sort=False):
        top = rows.head(k)
        parts.append(f"<h3>{esc(str(cat))}</h3><div class='scroll'><table class='shared-errors' "
                     f"data-category='{esc(str(cat))}'><tr><th class='l'>image</th><th class='l'>target</th>"
                     "<th class='l'>prediction</th><th>models</th><th>share of models</th></tr>")
        for e in top.itertuples(index=False):
            parts.append(f"<tr><td class='l'>{esc(str(e.image))}</td><td class='l'>{e.target} {esc(names[e.target])}"
                         f"</td><td class='l'>{e.pred} {esc(names[e.pred])}</td><td>{e.models_count}</td>"
                         f"<td>{_fmt(float(e.models_share))}</td></tr>")
        parts.append("</table></div>")
    wrong = result.all_wrong
    parts.append(f"<h3 id='all-wrong-title'>Images every model gets wrong ({len(wrong)})</h3>")
    if len(wrong):
        parts.append("<div class='scroll'><table id='all-wrong'><tr><th class='l'>image</th><th class='l'>target</th>"
                     "<th class='l'>predictions (models)</th></tr>")
        shown = wrong.head(200)
        made_on = dict(list(common[common["image"].isin(shown["image"])].groupby("image", observed=True)))
        for w in shown.itertuples(index=False):
            made = made_on.get(w.image, common.head(0))
            text = ", ".join(f"{names[p.pred]} ({p.models_count})" for p in made.itertuples(index=False))
            target = names[int(w.target)]
            parts.append(f"<tr class='all-wrong'><td class='l'>{esc(str(w.image))}</td><td class='l'>{w.target} "
                         f"{esc(target)}</td><td class='l'>{esc(text)}</td></tr>")
        parts.append("</table></div>")
    return parts


def _sources_html(result: StudyResult) -> list[str]:
    """What the study read: its inputs, and each sample list of the taxonomy with its source."""
    esc = html.escape
    parts = ["<h2 id='sources'>Inputs and sample lists</h2><ul>"]
    parts += [f"<li>{esc(kind)}: {esc(path)}</li>" for kind, path in result.inputs.items()]
    for name, info in result.sample_lists.items():
        where = esc(info["found"]) if info.get("found") else "<b>not found: its rules were not evaluated</b>"
        parts.append(f"<li class='sample-list'>sample list <code>{esc(name)}</code> ({int(info['images'])} images) "
                     f"from {where}; source: {esc(info['source'])}</li>")
    parts.append("</ul>")
    return parts


def _diff_html(diff: DiffResult, models: int) -> list[str]:
    """The taxonomy comparison: the confusion matrix (cells ``td.diff-cell`` with ``data-a`` /
    ``data-b``), then the most common example errors of every non-empty cell, with class names."""
    esc = html.escape
    a, b = f"{diff.name_a}.{diff.axis_a}", f"{diff.name_b}.{diff.axis_b}"
    pooled = any("count" in e for exs in diff.examples.values() for e in exs)
    rows = [i for i in range(len(diff.values_a)) if diff.matrix[i].any()]
    cols = [j for j in range(len(diff.values_b)) if diff.matrix[:, j].any()]
    what = (f"the predictions of all {models} models pooled (each model's prediction on each headline image "
            "counts once)" if pooled else "the samples")
    parts = [f"<h2 id='taxonomy-diff'>Taxonomy comparison</h2><p>{esc(a)} (rows) vs {esc(b)} (columns) on "
             f"{what}, left out where both call the prediction correct: {diff.samples} predictions, "
             f"{diff.same} ({diff.agreement:.1%}) with the same category id in both.</p>",
             "<div class='scroll'><table id='diff'><tr><th></th>"
             + "".join(f"<th>{esc(diff.values_b[j])}</th>" for j in cols) + "</tr>"]
    for i in rows:
        va = diff.values_a[i]
        cells = "".join(f"<td class='diff-cell' data-a='{esc(va)}' data-b='{esc(diff.values_b[j])}'>"
                        f"{int(diff.matrix[i, j])}</td>" for j in cols)
        parts.append(f"<tr><th class='l'>{esc(va)}</th>{cells}</tr>")
    parts.append("</table></div>")
    hidden_rows, hidden_cols = len(diff.values_a) - len(rows), len(diff.values_b) - len(cols)
    if hidden_rows or hidden_cols:
        parts.append(f"<p class='diff-hidden'>{hidden_rows} row(s) and {hidden_cols} column(s) with no prediction "
                     "are left out.</p>")
    order = sorted(diff.examples, key=lambda ij: (diff.values_a[ij[0]] == diff.values_b[ij[1]],
                                                  -int(diff.matrix[ij]), ij))
    parts.append("<h3>Example errors per cell</h3><div class='scroll'><table id='diff-examples'><tr><th class='l'>"
                 f"{esc(a)}</th><th class='l'>{esc(b)}</th><th>predictions</th><th class='l'>most common "
                 "(image: target &rarr; prediction" + (", models" if pooled else "") + ")</th></tr>")
    for i, j in order:
        exs = diff.examples[(i, j)]
        text = "<br>".join(
            f"{esc(str(e['sample']))}: {e['target']} {esc(e['target_name'])} &rarr; {e['pred']} "
            f"{esc(e['pred_name'])}" + (f" ({e['count']})" if "count" in e else "") for e in exs)
        parts.append(f"<tr class='diff-example' data-a='{esc(diff.values_a[i])}' data-b='{esc(diff.values_b[j])}'>"
                     f"<td class='l'>{esc(diff.values_a[i])}</td><td class='l'>{esc(diff.values_b[j])}</td>"
                     f"<td>{int(diff.matrix[i, j])}</td><td class='l'>{text}</td></tr>")
    parts.append("</table></div>")
    return parts


def write_report(result: StudyResult, out_dir: PathLike, color_by: str | None = None,
                 diff: DiffResult | None = None) -> dict[str, str]:
    """Plots (PNG + SVG), their trend fits (``trends.csv``) and ``report.html`` in ``out_dir``;
    returns kind -> path."""
    from errortaxa.study.study import write_csv

    if color_by is None and result.metadata_columns:
        color_by = result.metadata_columns[0]
    paths = write_plots(result, out_dir, color_by)
    trends = trend_fits(result, color_by)
    paths["trends"] = str(Path(out_dir) / "trends.csv")
    write_csv(trends, paths["trends"])
    report = Path(out_dir) / "report.html"
    write_text(report, render_html(result, paths, diff, trends=trends))
    paths["report"] = str(report)
    return paths


def _group_error_shares(table: pd.DataFrame, group: str, categories: Sequence[str]
                        ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Per category with errors in ``group``: (category, the group's MLA per model, the category's
    share of the group's errors per model)."""
    x = table[f"{group}.mla"].to_numpy(dtype=float)
    errors = table[f"{group}.samples"].to_numpy(dtype=float) * (1 - table[f"{group}.mla_share"].to_numpy(float))
    for cat in categories:
        column = f"{group}.n.{cat}"
        if column not in table.columns or table[column].sum() == 0:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            yield cat, x, table[column].to_numpy(dtype=float) / errors
