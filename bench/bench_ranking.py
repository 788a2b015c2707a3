"""Benchmark of the similarity ranking and its sensitivity analysis (in process, no IO).

Times :func:`quarters.analysis.similarity.similarity` for 1,000, 11,000 and 110,000 synthetic
units x 10 indicators (median of several runs, ``time.perf_counter``), both metrics, and
:func:`~quarters.analysis.similarity.sensitivity` with n=200 on 11,000 units.  Prints a Markdown
section and writes it to ``bench/RANKING.md``.

Run: ``.venv/bin/python bench/bench_ranking.py``
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from quarters.analysis.similarity import sensitivity, similarity

SIZES = (1_000, 11_000, 110_000)
N_INDICATORS = 10
OUT = Path(__file__).with_name("RANKING.md")


def synthetic(n: int, k: int = N_INDICATORS, seed: int = 0) -> pd.DataFrame:
    """Correlated, skewed synthetic indicators with 1 % missing values."""
    rng = np.random.default_rng(seed)
    x = np.exp(rng.normal(size=(n, k)) @ rng.normal(scale=0.5, size=(k, k)))
    x[rng.random(size=x.shape) < 0.01 / k] = np.nan
    return pd.DataFrame(
        x, index=[f"u{i:06d}" for i in range(n)], columns=[f"ind{j}" for j in range(k)]
    )


def median_time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and best wall time of ``fn`` over ``repeat`` runs after one warm-up, in seconds."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main() -> None:
    """Run the benchmark, print and write the Markdown section."""
    load = os.getloadavg()
    weights = {f"ind{j}": 1.0 + j for j in range(N_INDICATORS)}
    rows = []
    for metric in ("euclidean", "mahalanobis"):
        base_per_unit = None
        for n in SIZES:
            values = synthetic(n)
            ref = values.dropna().index[0]
            repeat = 25 if n <= 11_000 else 9
            t, best = median_time(
                lambda v=values, r=ref, m=metric: similarity(v, r, weights, metric=m), repeat
            )
            per_unit = t / n
            base_per_unit = base_per_unit or per_unit
            rows.append(
                f"| ranking, {metric} | {n:,} | {repeat} | {t * 1000:.1f} | {best * 1000:.1f} | "
                f"{per_unit * 1e6:.2f} | {per_unit / base_per_unit:.2f} |"
            )
    values = synthetic(11_000)
    ref = values.dropna().index[0]
    for metric in ("euclidean", "mahalanobis"):
        t, best = median_time(
            lambda m=metric: sensitivity(values, ref, weights, n=200, metric=m), 5
        )
        rows.append(
            f"| sensitivity n=200, top 10, {metric} | 11,000 | 5 | {t * 1000:.1f} | "
            f"{best * 1000:.1f} | "
            f"{t / 11_000 * 1e6:.2f} | – |"
        )
    s = sensitivity(values, ref, weights, n=200)
    cpus = os.cpu_count()
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    text = "\n".join(
        [
            "## Ranking",
            "",
            "In-process timings of `quarters.analysis.similarity` (no database, no HTTP): "
            f"synthetic units × {N_INDICATORS} indicators (log-normal, correlated, ~1 % missing, "
            "so a few units are excluded), weights 1…10, reference = first complete unit, "
            "zscore standardisation, default missing rule. Median and best of the given number of "
            "runs after one warm-up, `time.perf_counter`.",
            "",
            "| what | units | runs | median ms | best ms | µs per unit (median) "
            "| per-unit ratio vs 1,000 |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "A per-unit ratio near 1 means linear growth in the number of units; ratios below 1 "
            "mean a fixed cost per call (validation, building the pandas result, about 2 ms) "
            "dominates at small sizes, so the growth is at most linear. "
            f"Sensitivity example result (11,000 units, spread ±25 %): stability "
            f"(mean Jaccard of the top-10) = {s.stability:.3f}.",
            "",
            "Command: `.venv/bin/python bench/bench_ranking.py` (from the project root).",
            "",
            f"Machine: {platform.platform()}, nproc = {cpus}, Python {sys.version.split()[0]}, "
            f"numpy {np.__version__}, pandas {pd.__version__}; load average before the run "
            f"{load[0]:.2f} (other jobs share the machine, so treat ±30 % as noise).",
            "",
        ]
    )
    print(text)
    OUT.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
