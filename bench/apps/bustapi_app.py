"""The seed app, as the benchmark runs it: a JSON view, a static folder and send_file.

    python bench/apps/bustapi_app.py --host 127.0.0.1 --port 18001

``BENCH_STATIC`` is the fixture directory (served at ``/static``; ``/video/<id>``
sends ``<id>.mp4`` from it). BustAPI runs with ``workers=1`` and its default threads.
"""

from __future__ import annotations

import argparse
import os

from bustapi import BustAPI, send_file

FIXTURES = os.environ.get("BENCH_STATIC", "/tmp/bustapi-bench/static")

app = BustAPI(static_folder=FIXTURES)


@app.route("/hello")
def hello():
    return {"message": "Hello, world!"}


@app.route("/video/<id>")
def stream_video(id):
    return send_file(f"{FIXTURES}/{id}.mp4", mimetype="video/mp4")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18001)
    args = parser.parse_args()
    app.run(args.host, args.port, workers=1)
