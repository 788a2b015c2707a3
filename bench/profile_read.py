"""Where does quarters spend a request? py-spy samples ``quarters serve`` under the bench load.

Sets up the same database as bench_read.py (shared dataset, 50 districts in quarters' table),
starts ``quarters serve``, loads one request with wrk and records the server with py-spy
(installed into bench/.venv-prof when missing). Prints the functions with the most samples
(own and inclusive) and writes the collapsed stacks (for flamegraph tools) to
bench/results/profile-<request>-<date>.txt. It also counts the SQL statements that one request
sends (from the server log with ``log_statement = all`` for a single request).

Usage: .venv/bin/python bench/profile_read.py [--request b|d] [--seconds 15] [--rate 200]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_read  # noqa: E402
import common  # noqa: E402
from common import log  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from quarters.migrate import upgrade  # noqa: E402

PROF_VENV = common.BENCH_DIR / ".venv-prof"


def ensure_py_spy() -> Path:
    """py-spy in its own venv (bench/.venv-prof)."""
    exe = PROF_VENV / "bin" / "py-spy"
    if not exe.exists():
        log(f"creating {PROF_VENV} and installing py-spy")
        subprocess.run(["python3", "-m", "venv", str(PROF_VENV)], check=True)
        subprocess.run([str(PROF_VENV / "bin" / "pip"), "install", "-q", "py-spy"], check=True)
    return exe


def summarise(collapsed: Path, top: int = 30) -> str:
    """Top functions by own and inclusive samples from py-spy's raw (collapsed) output."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r" \((/[^)]*/)?([^/)]+)\)$", r" (\2)", f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    lines = [f"{total} samples", "", "own samples:"]
    lines += [f"{100 * n / total:5.1f} %  {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive samples:"]
    lines += [f"{100 * n / total:5.1f} %  {f}" for f, n in incl.most_common(top + 20)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Profile one request of the read benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--request", choices=["b", "d"], default="d")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--all-threads", action="store_true",
                        help="sample idle threads too (default: only the thread holding the GIL)")
    args = parser.parse_args(argv)
    py_spy = ensure_py_spy()
    workdir = Path(tempfile.mkdtemp(prefix="quarters-bench-prof-"))
    with common.throwaway_cluster() as cluster:
        engine = create_engine(cluster.url())
        server = None
        try:
            bench_read.load_dataset(cluster, engine)
            upgrade(engine)
            ids = bench_read.copy_districts(engine)
            server = bench_read.start_quarters(cluster, workdir)
            reqs = {r.key: r for r in bench_read.build_requests(ids[bench_read.FEATURE_DISTRICT],
                                                                 "", "")}
            url = server.base + reqs[args.request].quarters_path
            statements = common.capture_raw(cluster, url)
            common.run_wrk(url, 2, warmup=0)  # warm the pool
            common.wait_for_quiet()
            out = workdir / "collapsed.txt"
            spy = subprocess.Popen([str(py_spy), "record", "--pid", str(server.proc.pid),
                                    "--rate", str(args.rate), "--duration", str(args.seconds),
                                    "--format", "raw", "--output", str(out), "--nonblocking",
                                    *([] if args.all_threads else ["--gil"])],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                result = common.run_wrk(url, args.seconds, warmup=0, quiet=False, watch={
                    "server": [server.proc.pid], "db": [common.cluster_pid(cluster)]})
                spy.wait(timeout=args.seconds + 60)
            finally:
                if spy.poll() is None:
                    spy.terminate()
                    spy.wait(10)
            if not out.exists():
                raise RuntimeError(f"py-spy wrote nothing: {spy.stderr.read().decode()}")
            summary = summarise(out)
            report = (f"profile of quarters, request ({args.request}) {url}\n"
                      f"under load: {result.rps:.1f} req/s, p50 {result.p50_ms:.1f} ms\n"
                      f"cores busy: quarters process {result.cores['server']:.2f}, PostgreSQL "
                      f"{result.cores['db']:.2f}, wrk {result.cores['wrk']:.2f}, other "
                      f"{result.other_cores:.2f} (of {os.cpu_count()})\n"
                      f"CPU per request: quarters {result.cpu_ms['server']:.2f} ms, PostgreSQL "
                      f"{result.cpu_ms['db']:.2f} ms\n"
                      f"SQL statements per request ({len(statements)}):\n"
                      + "\n".join(f"  {s}" for s in statements) + "\n\n" + summary + "\n")
            common.RESULTS_DIR.mkdir(exist_ok=True)
            dest = common.RESULTS_DIR / f"profile-{args.request}-{common.now_stamp()[0]}.txt"
            dest.write_text(report + "\n# collapsed stacks\n" + out.read_text())
            print(report)
            log(f"written to {dest}")
        finally:
            if server:
                common.stop_process(server.proc)
            engine.dispose()
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
