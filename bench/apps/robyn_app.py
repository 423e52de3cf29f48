"""The same app in Robyn (a Python framework on a Rust runtime, actix-web underneath).

    python bench/apps/robyn_app.py --host 127.0.0.1 --port 18006 --processes 1 --workers 1

``/hello`` returns the same JSON as the other apps; ``/static`` is Robyn's
``serve_directory`` over ``BENCH_STATIC`` (actix-files, which answers Range requests);
``/video/:id`` returns ``serve_file`` of ``<id>.mp4``, Robyn's equivalent of send_file.
``--processes``/``--workers``/``--log-level`` are Robyn's own flags, read by its
``Config`` from the command line.
"""

from __future__ import annotations

import argparse
import os

from robyn import Robyn, serve_file
from robyn.robyn import Request

FIXTURES = os.environ.get("BENCH_STATIC", "/tmp/bustapi-bench/static")

app = Robyn(__file__)


@app.get("/hello")
def hello(request: Request) -> dict:
    return {"message": "Hello, world!"}


@app.get("/video/:id")
def stream_video(request: Request):
    return serve_file(os.path.join(FIXTURES, f"{request.path_params['id']}.mp4"))


app.serve_directory("/static", FIXTURES)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18006)
    args, _robyn_flags = parser.parse_known_args()
    app.start(host=args.host, port=args.port, _check_port=False)
