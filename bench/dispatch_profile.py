"""Python time per request of the bench app's views, without sockets or the engine.

Calls ``BustAPI._dispatch`` (what the engine calls on a view thread) directly,
with a request built in Python, so what is measured is the application layer
alone: contexts, hooks, session, the view, the response. Noise-insensitive
next to a socket benchmark: it prints the Python function calls per request
(cProfile's count, exact) and the best µs per request of five runs (the least
disturbed by other processes).

    .venv-test/bin/python bench/dispatch_profile.py            # /hello and /page
    .venv-test/bin/python bench/dispatch_profile.py --profile  # + cProfile's top entries

On a busy machine the timings wander; instructions do not. ``--only N`` runs N
requests and nothing else, for an instruction count under valgrind (the
difference between two N, divided, is the instructions per request):

    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        .venv-test/bin/python bench/dispatch_profile.py --only 2000 hello
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

APPS = Path(__file__).resolve().parent / "apps"
os.environ.setdefault("BENCH_STATIC", "/tmp")
sys.path.insert(0, str(APPS))

from bustapi.tag import TaggedJSONSerializer  # noqa: E402
from bustapi.testing import build_request_data  # noqa: E402
from bustapi_app import SECRET_KEY, app  # noqa: E402
from itsdangerous import URLSafeTimedSerializer  # noqa: E402


def session_cookie() -> str:
    """A session cookie in Flask's format for ``{"user_id": 1, "name": "Ada"}``."""
    s = URLSafeTimedSerializer(
        SECRET_KEY,
        salt="cookie-session",
        serializer=TaggedJSONSerializer(),
        signer_kwargs={"key_derivation": "hmac", "digest_method": "sha1"},
    )
    return "session=" + s.dumps({"user_id": 1, "name": "Ada"})


def endpoint_of(name: str) -> int:
    return next(i for i, rule in enumerate(app._rules) if rule.endpoint == name)


CASES = {
    "hello": ("/hello", "hello", {}),
    "page": ("/page", "page", {"Cookie": session_cookie()}),
}


def one_request(path: str, endpoint: int, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    data = build_request_data(app, path, headers=headers)
    return lambda: app._dispatch(data, endpoint, (), 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", action="store_true", help="print cProfile's top entries")
    parser.add_argument("-n", type=int, default=20000)
    parser.add_argument("--only", type=int, help="run this many requests, no timing")
    parser.add_argument("cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    app._prepare()
    for name in args.cases:
        path, endpoint_name, headers = CASES[name]
        call = one_request(path, endpoint_of(endpoint_name), headers)
        status, _headers, body = call()
        assert status == 200, (status, body)
        if args.only is not None:
            for _ in range(args.only):
                call()
            continue
        n = args.n if name == "hello" else args.n // 10
        for _ in range(n // 10):
            call()
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(n):
                call()
            runs.append((time.perf_counter() - t) / n * 1e6)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(100):
            call()
        profiler.disable()
        stats = pstats.Stats(profiler)
        calls = stats.total_calls / 100  # type: ignore[attr-defined]
        print(f"{name:6} {min(runs):7.2f} µs/request (best of 5)  {calls:6.1f} calls/request")
        if args.profile:
            stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
