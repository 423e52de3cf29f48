"""A/B of `GET /hello` across BustAPI builds, and against a bare dispatch path.

Where does `/hello` spend its time: in the engine or in the Python application
layer? Each *variant* serves bench/apps/bustapi_app.py (server on CPU 0, wrk on
CPU 1, one worker), and the variants are measured in interleaved rounds; the
medians are printed: requests per second, and the server's CPU time per request
(user + system, all threads, from /proc), which other load on a shared machine
moves much less than the rate, and the context switches of the server's
threads per request, which it hardly moves at all. ``AB_THREADS=1`` also prints,
per thread group and per request, how often it waited, how often it was preempted and
its CPU time: who hands the core to whom.

    bench/.venv/bin/python bench/ab_dispatch.py                 # current vs bare
    bench/.venv/bin/python bench/ab_dispatch.py old=/tmp/old/bin/python
    AB_PATH=/page AB_WRK_ARGS="-s /tmp/bustapi-bench/lua/logged_in_page.lua" \
        bench/.venv/bin/python bench/ab_dispatch.py main=/tmp/main/bin/python

``current`` is the interpreter running this script (bench/run.sh installs the
release build into bench/.venv). ``bare`` is the same build with
``BustAPI._dispatch`` replaced by the least a view needs (the request object, the
request context variable, the view, JSON): the ceiling for the Python side.
Extra ``name=python@app.py`` arguments add other builds with their own copy of the
app, e.g. the commit before the application layer, in a venv of its own:

    git worktree add /tmp/old 26abbeb && python3 -m venv /tmp/oldvenv
    (cd /tmp/old && /tmp/oldvenv/bin/pip install .)      # a release build
    git show 26abbeb:bench/apps/bustapi_app.py > /tmp/old_app.py
    bench/.venv/bin/python bench/ab_dispatch.py old=/tmp/oldvenv/bin/python@/tmp/old_app.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

APPS = Path(__file__).resolve().parent / "apps"
PORT = 18905
# Another route of the bench app, e.g. the logged-in page:
#   AB_PATH=/page AB_WRK_ARGS="-s /tmp/bustapi-bench/lua/logged_in_page.lua"
PATH = os.environ.get("AB_PATH", "/hello")
WRK_ARGS = os.environ.get("AB_WRK_ARGS", "").split()
ROUNDS = int(os.environ.get("AB_ROUNDS", "3"))
SECONDS = int(os.environ.get("AB_SECONDS", "4"))

BARE = """
import bustapi.app as A
from bustapi.ctx import RequestContext
from bustapi.globals import _cv_request
full = A.BustAPI._dispatch
def bare(self, data, endpoint, params, error_status):
    if endpoint < 0:
        return full(self, data, endpoint, params, error_status)
    req = self.request_class(data, self)
    req.url_rule = rule = self._rules[endpoint]
    req.view_args = {}
    token = _cv_request.set(RequestContext(self, req))
    try:
        rv = self.view_functions[rule.endpoint]()
    finally:
        _cv_request.reset(token)
    return 200, A._JSON_HEADERS, A.dumps_json(rv)
A.BustAPI._dispatch = bare
"""

SERVE = (
    "import runpy, sys; sys.argv = ['app', '--port', '{port}'];"
    " runpy.run_path('{app}', run_name='__main__')"
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads, so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_thread(pid: int) -> dict[str, list[int]]:
    """Per thread name (view threads folded into one): voluntary context switches
    (it waited), involuntary ones (it was preempted) and CPU ticks so far. Unlike
    time, a switch count is something other load hardly moves: it says how often
    the server's threads hand the core around."""
    out: dict[str, list[int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text().splitlines()
            stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread exited meanwhile
            continue
        fields = {k: v.strip() for k, _, v in (line.partition(":") for line in status)}
        name = fields["Name"].rstrip("0123456789")
        row = out.setdefault(name, [0, 0, 0])
        row[0] += int(fields["voluntary_ctxt_switches"])
        row[1] += int(fields["nonvoluntary_ctxt_switches"])
        row[2] += int(stat[11]) + int(stat[12])
    return out


def print_threads(before: dict[str, list[int]], after: dict[str, list[int]], n: int) -> None:
    """Per request, each thread group's waits (it slept), preemptions and CPU µs."""
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    for name, (vol, nonvol, ticks) in sorted(after.items()):
        v0, n0, t0 = before.get(name, [0, 0, 0])
        print(
            f"    {name:22} waits {(vol - v0) / n:6.3f}  preempted {(nonvol - n0) / n:6.3f}"
            f"  CPU {(ticks - t0) * tick_us / n:7.1f} µs per request"
        )


def switches(threads: dict[str, list[int]]) -> int:
    return sum(vol + nonvol for vol, nonvol, _ in threads.values())


def measure(python: str, prelude: str, app: str) -> tuple[float, float, float]:
    """``(requests per second, server CPU µs per request, context switches per
    request)``. On a shared machine the first moves with everyone else's load; the
    second much less: it counts only the time the server itself ran; the third
    hardly at all."""
    code = prelude + "\n" + SERVE.format(port=PORT, app=app)
    env = dict(os.environ, BENCH_STATIC=os.environ.get("BENCH_STATIC", "/tmp/bustapi-bench/static"))
    server = subprocess.Popen(
        ["taskset", "-c", "0", python, "-c", code],
        cwd=APPS,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/hello", timeout=1).read()  # up
                break
            except OSError:
                time.sleep(0.1)
        before = cpu_seconds(server.pid)
        threads = per_thread(server.pid)
        out = subprocess.run(
            ["taskset", "-c", "1", "wrk", "-t", "1", "-c", "64", "-d", str(SECONDS),
             *WRK_ARGS, f"http://127.0.0.1:{PORT}{PATH}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        cpu = cpu_seconds(server.pid) - before
        threads_after = per_thread(server.pid)
        requests = int(out.split(" requests in ")[0].split()[-1])
        if os.environ.get("AB_THREADS"):
            print_threads(threads, threads_after, requests)
        rate = float(out.split("Requests/sec:")[1].split()[0])
        switched = switches(threads_after) - switches(threads)
        return rate, cpu / requests * 1e6, switched / requests
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    app = str(APPS / "bustapi_app.py")
    variants = {"current": (sys.executable, "", app)}
    if PATH == "/hello":  # the bare path has no app context: enough for /hello only
        variants["bare"] = (sys.executable, BARE, app)
    for arg in sys.argv[1:]:
        name, _, spec = arg.partition("=")
        python, _, other_app = spec.partition("@")
        variants[name] = (python, "", other_app or app)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    for r in range(ROUNDS):
        order = list(variants)[r % len(variants) :] + list(variants)[: r % len(variants)]
        for name in order:
            results[name].append(measure(*variants[name]))
            rate, cpu, cs = results[name][-1]
            print(
                f"round {r + 1}: {name:8} {rate:9,.0f} req/s {cpu:7.2f} CPU µs/req"
                f" {cs:6.3f} switches/req",
                flush=True,
            )
    for name, runs in results.items():
        rate = statistics.median(r for r, _, _ in runs)
        cpu = statistics.median(c for _, c, _ in runs)
        cs = statistics.median(s for _, _, s in runs)
        print(f"median  {name:8} {rate:9,.0f} req/s {cpu:7.2f} CPU µs/req {cs:6.3f} switches/req")


if __name__ == "__main__":
    main()
