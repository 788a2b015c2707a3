"""Run the import and the read benchmark and put their figures into bench/README.md.

The full reports go to bench/results/{import,read}-<date>.md (git-ignored); the README gets the
figures between the markers ``<!-- results:start -->`` and ``<!-- results:end -->``.

Usage: .venv/bin/python bench/run_all.py [--seconds 15] [--rounds 1] [--runs 3]
                                         [--skip-import] [--skip-read] [--no-pgbench]
(``make bench`` runs it with the defaults.)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_import  # noqa: E402
import bench_read  # noqa: E402
import common  # noqa: E402

README = common.BENCH_DIR / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def readme_section(report: str) -> str:
    """A report without its long SQL listing (that stays in bench/results/), headings demoted."""
    report = re.sub(r"\nquarters' SQL per request.*?```sql.*?```\n", "\n", report, flags=re.S)
    return re.sub(r"^## ", "### ", report, flags=re.M)


def latest_report(name: str) -> str:
    """The newest bench/results/<name>-<date>.md, for a benchmark skipped in this run."""
    found = sorted(common.RESULTS_DIR.glob(f"{name}-*.md"))
    return found[-1].read_text() if found else ""


def write_readme(sections: list[str], command: str, note: str = "") -> None:
    """Replace the text between the markers (append the markers when missing)."""
    body = (f"{START}\n_Written by `{command}`{note}; full reports in `bench/results/`._\n\n"
            + "\n".join(readme_section(s).strip() + "\n" for s in sections) + END)
    common.write_between(README, START, END, body, heading="## Results", first="# Benchmarks\n")


def main(argv: list[str] | None = None) -> None:
    """Run both benchmarks, print their reports, update bench/README.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the read benchmark")
    parser.add_argument("--runs", type=int, default=3, help="runs of each importer")
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--skip-read", action="store_true")
    parser.add_argument("--no-pgbench", action="store_true", help="skip the database floor")
    args = parser.parse_args(argv)
    sections, reused = [], []
    if args.skip_import:
        sections.append(latest_report("import"))
        reused.append("import")
    else:
        sections.append(bench_import.main(["--runs", str(args.runs)]))
    if args.skip_read:
        sections.append(latest_report("read"))
        reused.append("read")
    else:
        sections.append(bench_read.main(["--seconds", str(args.seconds), "--rounds",
                                         str(args.rounds)]
                                        + (["--no-pgbench"] if args.no_pgbench else [])))
    sections = [s for s in sections if s]
    shown = "python bench/run_all.py" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    note = (f" (the {' and '.join(reused)} figures: the newest report in bench/results/, from an "
            "earlier run)" if reused else "")
    write_readme(sections, shown, note)
    common.log(f"figures written to {README}")


if __name__ == "__main__":
    main()
