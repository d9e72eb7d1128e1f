"""The evaluation report: a Markdown table, a chart and the configuration."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict

log = logging.getLogger(__name__)

COLUMNS = (
    ("recall_at_k", "recall@{k}"),
    ("ndcg_at_k", "NDCG@{k}"),
    ("map_at_k", "MAP@{k}"),
    ("mrr_at_k", "MRR@{k}"),
    ("hit_rate_at_k", "hit rate@{k}"),
    ("coverage", "coverage"),
    ("intra_list_similarity", "intra-list sim."),
)


def _day(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def scores_table(
    scores: dict[str, dict[str, float]], top_k: int, columns=COLUMNS
) -> str:
    """Models as rows, metrics as columns, in Markdown.

    Parameters
    ----------
    scores : dict of model name to metrics
    top_k : int

    Returns
    -------
    str
    """
    present = [
        (key, label)
        for key, label in columns
        if any(key in values for values in scores.values())
    ]
    header = ["model", *(label.format(k=top_k) for _, label in present), "users"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name, values in scores.items():
        cells = [name]
        for key, _ in present:
            cells.append(f"{values[key]:.4f}" if key in values else "-")
        cells.append(str(int(values.get("users", 0))))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def headline(result) -> str:
    """The hybrid's NDCG@k beside the best single model's and popularity's."""
    k = result.top_k
    hybrid = result.scores["hybrid"]["ndcg_at_k"]
    best, best_ndcg = result.best_single()
    popular = result.scores["popularity"]["ndcg_at_k"]

    def change(base: float) -> str:
        return f"{(hybrid / base - 1):+.1%}" if base else "n/a"

    return "\n".join(
        [
            f"| NDCG@{k} | value | hybrid vs it |",
            "|---|---|---|",
            f"| hybrid | {hybrid:.4f} | |",
            f"| best single model ({best}) | {best_ndcg:.4f} | {change(best_ndcg)} |",
            f"| popularity | {popular:.4f} | {change(popular)} |",
        ]
    )


def markdown(result) -> str:
    """The whole report as Markdown."""
    k = result.top_k
    filtered = result.config.filter_already_bought
    mode = "filtered out" if filtered else "kept in"
    other = "filtered out" if not filtered else "kept in"
    sections = [
        f"# Offline evaluation: {result.dataset}",
        "",
        f"{result.events:,} interactions over {result.catalog_size:,} products. "
        f"Temporal split: tuning trained before {_day(result.validation_cut)} and "
        f"was scored on {_day(result.validation_cut)} to {_day(result.test_cut)}; "
        f"the models below trained on the {result.train_events:,} events before "
        f"{_day(result.test_cut)} and are scored on what each of "
        f"{result.users:,} shoppers with earlier history did from that day on "
        f"(every distinct product bought, liked or rated 3 or more). Metrics at "
        f"k={k}; recall is hits over min(k, relevant). Items a shopper already "
        f"had are {mode} (chosen on the validation period). Configuration "
        + ("tuned on the validation period." if result.tuned else "not tuned.")
        + f" Run took {result.seconds:.0f}s.",
        "",
        "## Models",
        "",
        scores_table(result.scores, k),
        "",
        headline(result),
        "",
        "## Already-bought items",
        "",
        f"The same models with already-bought items {other} (NDCG@{k}, "
        f"recall@{k}, hit rate@{k}); buy-again recommends nothing once they "
        "are filtered.",
        "",
        _mode_table(result),
        "",
        "## Diversity",
        "",
        f"Maximal marginal relevance over the embeddings, trade-off "
        f"{result.config.mmr_lambda} (1 is none): intra-list similarity "
        f"{result.scores['hybrid'].get('intra_list_similarity', 0):.3f} against "
        f"{result.scores['hybrid, no MMR'].get('intra_list_similarity', 0):.3f} "
        "for the fused list alone (mean cosine between the items of one list).",
        "",
        "## Cold start",
        "",
    ]
    if result.cold_users:
        sections += [
            "New shoppers, first seen after the test cut, with a later visit: "
            "their first basket (or visit) is the session they arrive with, and "
            "they are scored on what they took later (not already in the "
            "session). The session's co-occurrence and content neighbours weigh "
            f"{result.config.session_weight} against trending's 1 (tuned on the "
            "validation period's new shoppers).",
            "",
            scores_table(result.cold_users, k, COLUMNS[:6]),
            "",
        ]
    else:
        sections += ["No new shopper came back after a first visit.", ""]
    if result.cold_items:
        sample = next(iter(result.cold_items.values()))
        sections += [
            f"New products: the {int(sample['users'])} products first bought after "
            "the test cut (so unknown to every trained model) and bought by a test "
            f"shopper; for each, the {int(sample['shoppers'])} test shoppers ranked "
            "by what they bought before among its nearest products by embedding "
            "(content neighbours), against the busiest shoppers first. Rows are "
            "averaged over products: recall is the share of a product's buyers "
            f"found in the {k} shoppers picked.",
            "",
            scores_table(result.cold_items, k, COLUMNS[:5]).replace(
                "| users |", "| products |"
            ),
            "",
        ]
    else:
        sections += ["No product was new in the test period.", ""]
    sections += ["## Frequently bought together", ""]
    if result.bought_together:
        baskets = int(next(iter(result.bought_together.values()))["baskets"])
        sections += [
            f"The {baskets:,} baskets of the test period with two or more products "
            "(lines of one invoice: same shopper, same time): for each product in "
            f"one, its {k} most frequent companions in the training baskets (as the "
            "product page and `/api/products/<id>/bought-together` show them), "
            "scored on the rest of that basket, against the bestsellers.",
            "",
            scores_table(result.bought_together, k, COLUMNS[:6]).replace(
                "| users |", "| basket products |"
            ),
            "",
        ]
    else:
        sections += ["No basket of the test period holds two products.", ""]
    sections += [
        "## Cross-check with implicit.evaluation",
        "",
        "implicit's `ranking_metrics_at_k` on its own models (already-bought "
        "items filtered, precision pooled over users):",
        "",
        "| model | precision | MAP | NDCG | AUC |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {v['precision']:.4f} | {v['map']:.4f} | {v['ndcg']:.4f} "
            f"| {v['auc']:.4f} |"
            for name, v in result.implicit_check.items()
        ),
        "",
    ]
    if result.tuning:
        sections += [
            "## Tuning (validation period)",
            "",
            "Each model on the validation period under the chosen configuration:",
            "",
            scores_table(result.validation, k, COLUMNS[:5]),
            "",
            f"NDCG@{k} of each setting tried, one at a time; the kept one in bold.",
            "",
            _tuning_table(result),
            "",
        ]
    sections += ["## Chart", "", "![NDCG, recall and hit rate](chart.png)", ""]
    return "\n".join(sections)


def _mode_table(result) -> str:
    k = result.top_k
    lines = [
        f"| model | NDCG@{k} | recall@{k} | hit rate@{k} | NDCG@{k} as chosen |",
        "|---|---|---|---|---|",
    ]
    for name, values in result.other_mode.items():
        chosen = result.scores.get(name, {}).get("ndcg_at_k", 0.0)
        lines.append(
            f"| {name} | {values['ndcg_at_k']:.4f} | {values['recall_at_k']:.4f} "
            f"| {values['hit_rate_at_k']:.4f} | {chosen:.4f} |"
        )
    return "\n".join(lines)


def _tuning_table(result) -> str:
    grouped: dict[tuple[str, str], list] = {}
    for step in result.tuning:
        grouped.setdefault((step.target, step.setting), []).append(step)
    lines = ["| model | setting | tried: NDCG |", "|---|---|---|"]
    for (target, setting), steps in grouped.items():
        tried = ", ".join(
            (
                f"**{s.value}: {s.ndcg_at_k:.4f}**"
                if s.kept
                else f"{s.value}: {s.ndcg_at_k:.4f}"
            )
            for s in steps
        )
        lines.append(f"| {target} | {setting} | {tried} |")
    return "\n".join(lines)


def chart(result, path: str) -> None:
    """NDCG, recall and hit rate at k of every model, as grouped bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(result.scores)
    metrics = [
        ("ndcg_at_k", "NDCG"),
        ("recall_at_k", "recall"),
        ("hit_rate_at_k", "hit rate"),
    ]
    positions = np.arange(len(names))
    width = 0.8 / len(metrics)
    figure, axes = plt.subplots(figsize=(10, 4.5), dpi=100)
    for n, (key, label) in enumerate(metrics):
        values = [result.scores[name][key] for name in names]
        axes.bar(
            positions + (n - 1) * width, values, width, label=f"{label}@{result.top_k}"
        )
    axes.set_xticks(positions, names, rotation=20, ha="right")
    axes.set_ylabel("score")
    axes.set_title(f"{result.dataset}: {result.users:,} test shoppers")
    axes.legend()
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_report(result, root: str, sources: list[str] | None = None) -> str:
    """Write ``report.md``, ``chart.png`` and ``config.json`` to
    ``root/<date>-<dataset>/``.

    Parameters
    ----------
    result : EvaluationResult
    root : str
        Parent folder of the report folders.
    sources : list of str, optional
        The files evaluated, recorded in ``config.json``.

    Returns
    -------
    str
        The report folder.
    """
    folder = os.path.join(root, f"{time.strftime('%Y-%m-%d')}-{result.dataset}")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "report.md"), "w", encoding="utf-8") as out:
        out.write(markdown(result))
    chart(result, os.path.join(folder, "chart.png"))
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as out:
        json.dump(
            {
                "dataset": result.dataset,
                "sources": [os.path.basename(s) for s in sources or []],
                "top_k": result.top_k,
                "validation_cut": _day(result.validation_cut),
                "test_cut": _day(result.test_cut),
                "tuned": result.tuned,
                "hybrid": result.config.to_dict(),
                "tuning": [asdict(step) for step in result.tuning],
            },
            out,
            indent=2,
        )
    log.info("evaluation report written to %s", folder)
    return folder
