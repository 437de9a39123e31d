"""A sweep's summary: each member's final scores, per-setting statistics, best-of-k.

Members are ranked by the best score they all have (`PRIMARY_SCORES`: Inception FID,
else the FID in the data set's own classifier's features, else the Gaussian's W2), named
in summary.json with what it measures, and shown beside precision, recall, density and
coverage in the same features.

Written to the sweep's workdir as `summary.json`, `summary.csv` (a row a member, the
ranking score and its companions first) and
`summary_<setting>.png` (the score against each swept setting other than the seed:
every member as a point, the mean over seeds with its standard deviation as a line),
plus `best_of_k.png`, and for a grid of two settings `summary_<a>_<b>.png` (the mean
± std over seeds of each cell). summary.json also holds the statistics of each
configuration over its seeds and the share of the score's variance that is between
seeds (`seed_share`). Best-of-k follows Lucic et al. (2018): the expected best score of
k members drawn at random without replacement from the finished ones, against k, the
curve that says how much a search budget buys.
"""

import csv
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gan_jax import viz
from gan_jax import workdir as workdir_lib

# The scores a summary may rank members by, lower being better, in order of preference
# (the first that every scored member has), with what each measures.
PRIMARY_SCORES = {
    "inception_fid": "FID in Inception-v3's pool3 features (pytorch-fid's network)",
    "fid": "FID in the features of a classifier trained on the data set's labels",
    "w2": "2-Wasserstein distance from the fitted Gaussian to the data's",
}
# Shown beside the ranking score: fewer modes (recall) and worse samples (precision) apart.
COMPANION_SCORES = ("precision", "recall", "density", "coverage")


def primary_score(scores: Sequence[Mapping[str, Any]]) -> str | None:
    """The first of `PRIMARY_SCORES` that every scored member has, else None."""
    for name in PRIMARY_SCORES:
        if scores and all(name in s for s in scores):
            return name
    return None


def expected_best_of_k(values: Sequence[float]) -> list[float]:
    """E[min of k values drawn without replacement], for k = 1 .. len(values).

    With the values sorted ascending, the i-th smallest (1-based) is the minimum of a
    draw of k exactly when the other k - 1 come from the n - i larger ones.
    """
    ordered = sorted(values)
    n = len(ordered)
    return [
        sum(v * math.comb(n - i, k - 1) for i, v in enumerate(ordered, 1)) / math.comb(n, k)
        for k in range(1, n + 1)
    ]


def setting_statistics(
    members: Sequence[Mapping[str, Any]], setting: str, score: str
) -> list[dict[str, Any]]:
    """Mean, std, min and max of `score` over the finished members sharing each value of
    `setting`, in the order the values first appear."""
    by_value: dict[str, list[float]] = {}
    for member in members:
        if member["diverged"] is None:
            key = json.dumps(member["overrides"][setting])
            by_value.setdefault(key, []).append(member["scores"][score])
    return [{setting: json.loads(key), **_statistics(values)} for key, values in by_value.items()]


def configuration_statistics(
    members: Sequence[Mapping[str, Any]], score: str
) -> list[dict[str, Any]]:
    """The statistics of `score` over the seeds of each configuration (the swept
    settings other than the seed), in the order the configurations first appear."""
    by_configuration: dict[str, list[float]] = {}
    for member in members:
        if member["diverged"] is None:
            settings = {k: v for k, v in member["overrides"].items() if k != "seed"}
            key = json.dumps(settings)
            by_configuration.setdefault(key, []).append(member["scores"][score])
    return [
        {"settings": json.loads(key), **_statistics(values)}
        for key, values in by_configuration.items()
    ]


def seed_share(members: Sequence[Mapping[str, Any]], score: str) -> float | None:
    """The share of the score's variance over finished members that lies between seeds
    of one configuration (1: seeds explain all of it; 0: the settings do); None
    without repeated configurations or spread."""
    rows = configuration_statistics(members, score)
    total = np.array([m["scores"][score] for m in members if m["diverged"] is None])
    if not rows or max(row["count"] for row in rows) < 2 or np.var(total) == 0:
        return None
    within = sum(row["count"] * row["std"] ** 2 for row in rows)
    return float(within / (len(total) * np.var(total)))


def _statistics(values: Sequence[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
    }


def write(
    workdir: str, spec: str, members: Sequence[Mapping[str, Any]], search: str = "grid"
) -> dict[str, Any]:
    """Writes the summary files of a finished sweep; returns what summary.json holds.

    Args:
      workdir: the sweep's workdir.
      spec: the `--sweep` text.
      members: per member, `name`, `overrides` (the swept settings), `scores` (numbers)
        and `diverged` (None, or what went non-finite); for a search also `stopped`
        (None, or where halving stopped it), `settings` (the in-state optimizer settings
        it started with), `exploits` (PBT's copies into it: `step`, `from`, `settings`
        as [before, after]) and `step` (where its state is).
      search: the sweep's `--search`: 'grid', 'halving' or 'pbt'.
    """
    finished = [m for m in members if m["diverged"] is None]
    score = primary_score([m["scores"] for m in finished])
    settings = list(members[0]["overrides"]) if members else []
    summary: dict[str, Any] = {
        "spec": spec,
        "score": score,
        "score_means": PRIMARY_SCORES.get(score),
        "members": list(members),
        "diverged": [{"name": m["name"], "cause": m["diverged"]} for m in members if m["diverged"]],
        "search": search,
    }
    if search != "grid":
        summary["stopped"] = [
            {"name": m["name"], "cause": m["stopped"]} for m in members if m.get("stopped")
        ]
    if score is not None and finished and search != "grid":
        summary["ranking"] = ranking(members, score)
        best = summary["best"] = summary["ranking"][0]["name"]
        summary["best_settings"] = settings_schedule(best, members)
        if search == "pbt":
            summary["lineage"] = lineage(members)
            _plot_lineage(workdir, members, best)
    elif score is not None and finished:
        values = [m["scores"][score] for m in finished]
        summary["ranking"] = ranking(members, score)
        summary["best"] = summary["ranking"][0]["name"]
        summary["best_of_k"] = expected_best_of_k(values)
        summary["by_setting"] = {
            s: setting_statistics(members, s, score) for s in settings if s != "seed"
        }
        summary["by_configuration"] = configuration_statistics(members, score)
        summary["seed_share"] = seed_share(members, score)
        _plot(workdir, summary, finished, score)
    with open(workdir_lib.summary_file(workdir), "w") as f:
        json.dump(summary, f, indent=2)
    _write_csv(workdir_lib.summary_file(workdir, ".csv"), members, settings, score)
    return summary


def companions(score: str) -> list[str]:
    """The precision/recall/density/coverage names that go with `score` (same features)."""
    prefix = score[: -len("fid")] if score.endswith("fid") else None
    return [] if prefix is None else [prefix + name for name in COMPANION_SCORES]


def ranking(members: Sequence[Mapping[str, Any]], score: str) -> list[dict[str, Any]]:
    """The finished members from best to worst by `score`, each with its companions; in a
    halving search, those trained to the end before those it stopped (which have their
    rung's `score` alone)."""
    finished = sorted(
        (m for m in members if m["diverged"] is None),
        key=lambda m: (m.get("stopped") is not None, m["scores"][score]),
    )
    columns = [score, *companions(score)]
    rows = [
        {"name": m["name"], **{c: m["scores"][c] for c in columns if c in m["scores"]}}
        for m in finished
    ]
    for row, member in zip(rows, finished, strict=True):
        if member.get("stopped"):
            row["stopped"] = member["stopped"]
    return rows


def lineage(members: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every PBT copy in step order: `step`, `from` and `to` (member names), and the
    settings the target had and got."""
    copies = [
        {"step": e["step"], "from": e["from"], "to": m["name"], "settings": e["settings"]}
        for m in members
        for e in m.get("exploits", ())
    ]
    return sorted(copies, key=lambda c: (c["step"], c["to"]))


def settings_schedule(name: str, members: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The in-state settings that trained member `name`'s final weights, as a list of
    {`from_step`, `settings`}: in PBT, its ancestors' up to each copy it descends from."""
    by_name = {m["name"]: m for m in members}

    def schedule(member: str, until: float) -> list[dict[str, Any]]:
        copies = [e for e in by_name[member].get("exploits", ()) if e["step"] < until]
        if not copies:
            return [{"from_step": 0, "settings": dict(by_name[member]["settings"])}]
        last = copies[-1]
        got = {k: after for k, (_, after) in last["settings"].items()}
        return [*schedule(last["from"], last["step"]), {"from_step": last["step"], "settings": got}]

    return schedule(name, math.inf)


def _plot_lineage(workdir: str, members: Sequence[Mapping[str, Any]], best: str) -> None:
    names = [m["name"] for m in members]
    index = {n: i for i, n in enumerate(names)}
    every_copy = lineage(members)
    copies = [(c["step"], index[c["from"]], index[c["to"]]) for c in every_copy]
    # The settings a copy perturbed (those whose value changed in some copy).
    changed = sorted({k for c in every_copy for k, (a, b) in c["settings"].items() if a != b})
    settings = {}
    for setting in changed:
        settings[setting] = [
            [(0, m["settings"][setting])]
            + [(e["step"], e["settings"][setting][1]) for e in m.get("exploits", ())]
            for m in members
        ]
    schedule = settings_schedule(best, members)
    best_settings = {
        setting: [(part["from_step"], part["settings"][setting]) for part in schedule]
        for setting in changed
    }
    last_step = max(m["step"] for m in members)
    viz.save_lineage_plot(
        workdir_lib.lineage_plot(workdir),
        names,
        last_step,
        copies,
        settings,
        index[best],
        best_settings,
    )


def _write_csv(
    path: str, members: Sequence[Mapping[str, Any]], settings: list[str], score: str | None
) -> None:
    numeric = {k for m in members for k, v in m["scores"].items() if isinstance(v, int | float)}
    first = [c for c in ([score, *companions(score)] if score else []) if c in numeric]
    score_names = first + sorted(numeric - set(first))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", *settings, *score_names, "diverged", "stopped"])
        for m in members:
            writer.writerow(
                [
                    m["name"],
                    *(json.dumps(m["overrides"][s]) for s in settings),
                    *(m["scores"].get(k, "") for k in score_names),
                    m["diverged"] or "",
                    m.get("stopped") or "",
                ]
            )


def _plot(
    workdir: str, summary: Mapping[str, Any], finished: Sequence[Mapping[str, Any]], score: str
) -> None:
    for setting, rows in summary["by_setting"].items():
        keys = [json.dumps(row[setting]) for row in rows]
        points = [
            (keys.index(json.dumps(m["overrides"][setting])), m["scores"][score]) for m in finished
        ]
        labels = [key.strip('"') for key in keys]
        viz.save_setting_plot(
            workdir_lib.summary_plot(workdir, setting),
            labels,
            [row["mean"] for row in rows],
            [row["std"] for row in rows],
            points,
            xlabel=setting,
            ylabel=score,
        )
    viz.save_best_of_k_plot(workdir_lib.best_of_k_plot(workdir), summary["best_of_k"], ylabel=score)
    swept = list(summary["by_setting"])
    if len(swept) == 2:  # a grid of two settings: mean ± std over seeds in each cell
        rows, cols = ([json.dumps(r[s]) for r in summary["by_setting"][s]] for s in swept)
        means, stds = np.full((len(rows), len(cols)), np.nan), np.zeros((len(rows), len(cols)))
        for row in summary["by_configuration"]:
            i = rows.index(json.dumps(row["settings"][swept[0]]))
            j = cols.index(json.dumps(row["settings"][swept[1]]))
            means[i, j], stds[i, j] = row["mean"], row["std"]
        viz.save_grid_plot(
            workdir_lib.summary_plot(workdir, *swept),
            means,
            stds,
            [r.strip('"') for r in rows],
            [c.strip('"') for c in cols],
            ylabel=swept[0],
            xlabel=swept[1],
            title=f"{score}: mean ± std over seeds",
        )
