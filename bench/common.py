"""Shared helpers of the benchmarks: throwaway cluster, server processes, wrk, reporting.

Everything started here is registered and stopped again: in ``finally`` blocks, at interpreter
exit (atexit) and on SIGTERM/SIGHUP. Load stays on 127.0.0.1 and is bounded (``wrk -d``).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from quarters.embedded import Cluster

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
SHARED_BENCH = Path(os.environ.get("QUARTERS_BENCH_DIR", PROJECT_ROOT.parent / "shared" / "bench"))
DATA_DIR = Path(os.environ.get("QUARTERS_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))
QUARTERS_BIN = Path(sys.executable).parent / "quarters"

# -- bookkeeping of everything we start ----------------------------------------------------
_PROCESSES: list[subprocess.Popen] = []
_CLUSTERS: list[Cluster] = []


def log(msg: str) -> None:
    """Progress line on stderr (stdout carries the results)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def backend_cpu(pid: int) -> float:
    """User + system CPU seconds of one running process so far (a PostgreSQL backend)."""
    fields = _stat_fields(pid)
    if fields is None:
        raise RuntimeError(f"process {pid} is gone")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cleanup_all() -> None:
    for proc in list(_PROCESSES):
        stop_process(proc)
    for cluster in list(_CLUSTERS):
        _destroy_cluster(cluster)


def _on_signal(signum: int, _frame: object) -> None:
    # Turn SIGTERM/SIGHUP into a normal exit so finally blocks and atexit run.
    raise SystemExit(128 + signum)


atexit.register(_cleanup_all)
for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


# -- the throwaway PostgreSQL + PostGIS cluster -----------------------------------------------
def _destroy_cluster(cluster: Cluster) -> None:
    try:
        cluster.stop()
    except Exception as exc:  # keep cleaning up; say what went wrong
        log(f"stopping the cluster in {cluster.home} failed: {exc}")
    shutil.rmtree(cluster.home, ignore_errors=True)
    if cluster in _CLUSTERS:
        _CLUSTERS.remove(cluster)


@contextlib.contextmanager
def throwaway_cluster(prefix: str = "quarters-bench-") -> Iterator[Cluster]:
    """A PostgreSQL + PostGIS cluster in a temp dir on a free port; stopped and removed after."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(home, 0o755)  # the server runs as 'postgres' when we are root
    cluster = Cluster(home=home, port=free_port())
    _CLUSTERS.append(cluster)
    try:
        log(f"starting throwaway cluster in {home} on 127.0.0.1:{cluster.port}")
        cluster.start()
        yield cluster
    finally:
        log(f"stopping throwaway cluster on port {cluster.port}")
        _destroy_cluster(cluster)


def password_of(cluster: Cluster) -> str:
    """Password of the cluster's quarters role."""
    return cluster.password_file.read_text().strip()


def plain_url(cluster: Cluster) -> str:
    """postgresql:// URL (no driver suffix), e.g. for tipg."""
    return cluster.url("admin").replace("postgresql+psycopg://", "postgresql://", 1)


def masked(text: str, cluster: Cluster) -> str:
    """Text with the cluster's password replaced by ***."""
    return text.replace(password_of(cluster), "***")


def pg_env(cluster: Cluster) -> dict[str, str]:
    """Environment for libpq tools (psql, pgbench, ogr2ogr) talking to the cluster."""
    return {**os.environ, "PGPASSWORD": password_of(cluster), "PGHOST": "127.0.0.1",
            "PGPORT": str(cluster.port), "PGUSER": "quarters", "PGDATABASE": "quarters"}


# -- server processes ------------------------------------------------------------------------
def start_process(cmd: list[str], *, logfile: Path, env: dict[str, str] | None = None,
                  cwd: Path | None = None) -> subprocess.Popen:
    """Start a process in a session of its own, output to ``logfile``; registered for cleanup."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                start_new_session=True)
    proc.bench_log = logfile  # type: ignore[attr-defined]
    _PROCESSES.append(proc)
    log(f"started pid {proc.pid}: {' '.join(cmd)}")
    return proc


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate the process (its own process group), wait, kill if it does not go."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)
        log(f"stopped pid {proc.pid}")
    if proc in _PROCESSES:
        _PROCESSES.remove(proc)


def log_tail(proc: subprocess.Popen, chars: int = 2000) -> str:
    """End of the process's log file."""
    path = getattr(proc, "bench_log", None)
    if not path or not Path(path).exists():
        return ""
    return Path(path).read_text(errors="replace")[-chars:]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    """Poll ``url`` until it answers 200; fail early when the process exits."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited ({proc.returncode}) before {url} "
                               f"answered:\n{log_tail(proc)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200 within {timeout}s:\n{log_tail(proc)}")
        time.sleep(0.3)


def start_app(env: dict[str, str], logfile: Path) -> tuple[subprocess.Popen, str]:
    """quarters' app in one uvicorn process on a free port of 127.0.0.1, answering its health
    check; (process, base URL). The process is registered for cleanup."""
    port = free_port()
    proc = start_process(
        [sys.executable, "-m", "uvicorn", "--factory", "quarters.api:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        logfile=logfile, env=env, cwd=PROJECT_ROOT)
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/api/health", proc)
    return proc, base


def chromium(playwright):  # noqa: ANN001, ANN201
    """Debian's headless Chromium through Playwright (never a downloaded browser)."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    return playwright.chromium.launch(executable_path=executable,
                                      args=["--no-sandbox", "--disable-gpu"])


def http_get(url: str, timeout: float = 30) -> tuple[int, bytes]:
    """(status, body) of a GET request (errors are returned, not raised)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get_json(url: str) -> dict:
    """GET ``url``, require 200 and return the decoded JSON."""
    status, body = http_get(url)
    if status != 200:
        raise RuntimeError(f"GET {url} → {status}: {body[:500]!r}")
    return json.loads(body)


# -- wrk -------------------------------------------------------------------------------------
WRK_THREADS, WRK_CONNECTIONS = 2, 16
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


@dataclass
class WrkResult:
    """Figures of one wrk run (latencies in ms)."""

    url: str
    command: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int = 0
    socket_errors: str = ""
    busy_before: float = 0.0  # CPU share used by others just before the run
    other_cores: float = float("nan")  # cores busy with processes not under test during it
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per request by process
    cores: dict[str, float] = field(default_factory=dict)  # cores busy by process
    raw: str = field(default="", repr=False)

    @property
    def clean(self) -> bool:
        """True when every response was 2xx/3xx and no socket error happened."""
        return self.non_2xx == 0 and not self.socket_errors


def _duration_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value.strip())
    if not match:
        raise ValueError(f"cannot parse wrk duration '{value}'")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk_command(url: str, seconds: int) -> list[str]:
    """The exact wrk command line used for every measurement."""
    return ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s",
            "--timeout", "10s", "--latency", url]


def parse_wrk(output: str, url: str, command: str) -> WrkResult:
    """Parse requests/s and the 50 %/99 % lines of wrk's latency distribution."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"(\d+) requests in", output)
    if not (rps and p50 and p99 and total):
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:\s+(.*)", output)
    return WrkResult(url=url, command=command, rps=float(rps.group(1)),
                     p50_ms=_duration_ms(p50.group(1)), p99_ms=_duration_ms(p99.group(1)),
                     requests=int(total.group(1)),
                     non_2xx=int(non2xx.group(1)) if non2xx else 0,
                     socket_errors=errors.group(1).strip() if errors else "", raw=output)


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # total, and what is not process work: idle, iowait, irq, softirq (loopback networking of
    # the load itself shows up as softirq, not as CPU time of any process)
    return sum(fields[:8]), fields[3] + fields[4] + fields[5] + fields[6]


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def busy_fraction(interval: float = 1.0) -> float:
    """Share of all CPUs busy during ``interval`` seconds (whoever uses them)."""
    t0, i0 = _cpu_times()
    time.sleep(interval)
    t1, i1 = _cpu_times()
    return 1 - (i1 - i0) / max(1, t1 - t0)


QUIET_BELOW = 0.15  # busy share of all CPUs that counts as an idle machine
QUIET_WAIT = int(os.environ.get("BENCH_QUIET_WAIT", "60"))  # seconds to wait for it at most
DISTURBED = 0.25  # cores used by other processes during a run that mark its figures as disturbed


def wait_for_quiet() -> float:
    """Wait (bounded) until the machine is idle, so other work does not skew a measurement.

    Returns the busy share seen last; warns when the machine stayed busy.
    """
    deadline = time.monotonic() + QUIET_WAIT
    busy = busy_fraction()
    while busy > QUIET_BELOW and time.monotonic() < deadline:
        time.sleep(2)
        busy = busy_fraction()
    if busy > QUIET_BELOW:
        log(f"warning: the machine is still {busy:.0%} busy with other work; figures will be low")
    return busy


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def tree_cpu_seconds(roots: list[int]) -> float:
    """CPU seconds (user + system) of ``roots`` and their direct children (e.g. PG backends)."""
    pids = set(roots)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and int(fields[1]) in roots:
                pids.add(int(entry.name))
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def cluster_pid(cluster: Cluster) -> int:
    """PID of the cluster's postmaster."""
    return int((cluster.pgdata / "postmaster.pid").read_text().split()[0])


def run_wrk(url: str, seconds: int, *, warmup: int = 2,
            watch: dict[str, list[int]] | None = None, quiet: bool = True) -> WrkResult:
    """Wait for an idle machine, a short unrecorded warm-up, then the bounded wrk run.

    ``watch``: our processes under test by name, e.g. {"server": [pid], "db": [postmaster]}
    (children included); their CPU per request and the CPU the rest of the machine used
    during the run (``other_cores``, to spot disturbed figures) are reported. ``quiet=False``
    skips waiting for an idle machine (when the caller has just waited).
    """
    busy = wait_for_quiet() if quiet else float("nan")
    if warmup:
        subprocess.run(wrk_command(url, warmup), capture_output=True, text=True,
                       timeout=warmup + 30, check=False)
    cmd = wrk_command(url, seconds)
    log(f"{' '.join(cmd)}")
    watch = watch or {}
    cpu0 = {name: tree_cpu_seconds(pids) for name, pids in watch.items()}
    wrk0 = _children_cpu()
    total0, idle0 = _cpu_times()
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    wall = time.monotonic() - start
    total1, idle1 = _cpu_times()
    cpu = {name: tree_cpu_seconds(pids) - cpu0[name] for name, pids in watch.items()}
    cpu["wrk"] = _children_cpu() - wrk0
    busy_cores = ((total1 - total0) - (idle1 - idle0)) / os.sysconf("SC_CLK_TCK")
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}{done.stdout}")
    result = parse_wrk(done.stdout, url, " ".join(cmd))
    result.busy_before = busy
    result.cpu_ms = {name: 1000 * sec / max(1, result.requests) for name, sec in cpu.items()}
    result.cores = {name: sec / wall for name, sec in cpu.items()}
    if watch:
        result.other_cores = max(0.0, busy_cores / wall - sum(result.cores.values()))
    log(f"  → {result.rps:.1f} req/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
        + "".join(f", {n} {c:.2f} cores" for n, c in result.cores.items())
        + (f", other load {result.other_cores:.2f} cores" if watch else "")
        + ("" if result.clean else f"  (non-2xx {result.non_2xx}, errors {result.socket_errors})"))
    return result


def median_result(results: list[WrkResult]) -> WrkResult:
    """The run with the median requests/s (of several rounds)."""
    ordered = sorted(results, key=lambda r: r.rps)
    return ordered[(len(ordered) - 1) // 2]


# -- pgbench ---------------------------------------------------------------------------------
def run_pgbench(cluster: Cluster, sql_file: Path, seconds: int = 10,
                search_path: str | None = None) -> tuple[float, str]:
    """Transactions/s of ``pgbench -n -c4 -j2 -T{seconds} -M prepared -f FILE`` over 127.0.0.1."""
    cmd = ["pgbench", "-n", "-c4", "-j2", f"-T{seconds}", "-M", "prepared", "-f", str(sql_file),
           "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "quarters", "quarters"]
    env = pg_env(cluster)
    shown = " ".join(cmd)
    if search_path:
        env["PGOPTIONS"] = f"-c search_path={search_path}"
        shown = f"PGOPTIONS='-c search_path={search_path}' {shown}"
    wait_for_quiet()
    log(shown)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60,
                          check=False)
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    if done.returncode != 0 or not match:
        raise RuntimeError(f"pgbench failed: {done.stderr}{done.stdout}")
    log(f"  → {float(match.group(1)):.1f} q/s")
    return float(match.group(1)), shown


_LOG_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[\d+\] ", re.M)
NOISE_STATEMENTS = ("", ";", "BEGIN", "ROLLBACK", "COMMIT")  # pool pings, transactions


def capture_raw(cluster: Cluster, url: str) -> list[str]:
    """Every statement the server sends for one GET of ``url`` (pings and BEGIN included)."""
    import psycopg

    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET log_statement = 'all'")
        conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)
        before = cluster.logfile.stat().st_size
        status, _ = http_get(url)
        time.sleep(0.5)
        conn.execute("ALTER SYSTEM RESET log_statement")
        conn.execute("SELECT pg_reload_conf()")
    if status != 200:
        raise RuntimeError(f"GET {url} → {status}")
    with open(cluster.logfile, "rb") as fh:
        fh.seek(before)
        new = fh.read().decode(errors="replace")
    entries = [e for e in _LOG_ENTRY.split(new) if e.strip()]
    statements: list[str] = []
    for entry in entries:
        m = re.match(r"LOG:\s+(?:execute [^:]*|statement): (.*)", entry, re.S)
        if m:
            statements.append(m.group(1).strip())
            continue
        m = re.match(r"DETAIL:\s+parameters: (.*)", entry, re.S)
        if m and statements:
            params = dict(re.findall(r"\$(\d+) = ('(?:[^']|'')*'|NULL)", m.group(1)))
            sql = statements[-1]
            for n in sorted(params, key=int, reverse=True):
                sql = sql.replace(f"${n}", params[n])
            statements[-1] = sql
    return [s for s in statements
            if "log_statement" not in s and "pg_reload_conf" not in s]


# -- reporting -------------------------------------------------------------------------------
def machine_info() -> dict[str, str]:
    """nproc, memory, CPU model, OS, Python."""
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"nproc": str(os.cpu_count()), "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
            "cpu": cpu or platform.processor(), "os": platform.platform(),
            "python": platform.python_version()}


def tool_version(cmd: list[str]) -> str:
    """First line of a tool's version output."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    except OSError:
        return "not installed"
    out = (done.stdout or done.stderr).strip()
    return out.splitlines()[0] if out else "?"


def db_versions(conninfo: str) -> dict[str, str]:
    """PostgreSQL and PostGIS versions of the cluster."""
    import psycopg

    with psycopg.connect(conninfo) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        postgis = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
        geos = conn.execute("SELECT postgis_geos_version()").fetchone()[0]
        proj = conn.execute("SELECT postgis_proj_version()").fetchone()[0]
    return {"postgresql": pg, "postgis": postgis, "geos": geos.split("-")[0],
            "proj": proj.split(" ")[0]}


def quarters_version() -> str:
    """Installed quarters version."""
    from quarters import __version__

    return __version__


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def now_stamp() -> tuple[str, str]:
    """(date for file names, full local timestamp)."""
    now = datetime.now().astimezone()
    return now.strftime("%Y-%m-%d"), now.strftime("%Y-%m-%d %H:%M %Z")


def write_result(name: str, text: str) -> Path:
    """Write ``bench/results/<name>-<date>.md`` (git-ignored) and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{now_stamp()[0]}.md"
    path.write_text(text)
    return path


def write_between(path: Path, start: str, end: str, block: str, *, heading: str = "",
                  first: str = "") -> None:
    """Put ``block`` (which begins with ``start`` and ends with ``end``) in place of the text
    between the markers of ``path``; append it (after ``heading``) when the markers are
    missing; ``first``: the file's text when it does not exist yet."""
    old = path.read_text(encoding="utf-8") if path.exists() else first
    if start in old and end in old:
        head, rest = old.split(start, 1)
        new = head + block + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + (heading + "\n\n" if heading else "") + block + "\n"
    path.write_text(new, encoding="utf-8")


def median(values: list[float]) -> float:
    """Median."""
    return statistics.median(values)
