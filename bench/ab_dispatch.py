"""A/B of `GET /hello` across BustAPI builds, and against a bare dispatch path.

Where does `/hello` spend its time: in the engine or in the Python application
layer? Each *variant* serves bench/apps/bustapi_app.py (server on CPU 0, wrk on
CPU 1, one worker), and the variants are measured in interleaved rounds; the
medians are printed.

    bench/.venv/bin/python bench/ab_dispatch.py                 # current vs bare
    bench/.venv/bin/python bench/ab_dispatch.py old=/tmp/old/bin/python

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


def measure(python: str, prelude: str, app: str) -> float:
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
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/hello", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        out = subprocess.run(
            ["taskset", "-c", "1", "wrk", "-t", "1", "-c", "64", "-d", str(SECONDS),
             f"http://127.0.0.1:{PORT}/hello"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return float(out.split("Requests/sec:")[1].split()[0])
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    app = str(APPS / "bustapi_app.py")
    variants = {"current": (sys.executable, "", app), "bare": (sys.executable, BARE, app)}
    for arg in sys.argv[1:]:
        name, _, spec = arg.partition("=")
        python, _, other_app = spec.partition("@")
        variants[name] = (python, "", other_app or app)
    results: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(ROUNDS):
        order = list(variants)[r % len(variants) :] + list(variants)[: r % len(variants)]
        for name in order:
            results[name].append(measure(*variants[name]))
            print(f"round {r + 1}: {name:8} {results[name][-1]:9,.0f} req/s", flush=True)
    for name, runs in results.items():
        print(f"median  {name:8} {statistics.median(runs):9,.0f} req/s")


if __name__ == "__main__":
    main()
