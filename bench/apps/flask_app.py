"""The same app in Flask (WSGI), run under gunicorn's gthread worker.

gunicorn -k gthread --workers 1 --threads 8 -b 127.0.0.1:18004 flask_app:app
"""

from __future__ import annotations

import os

from flask import Flask, send_file

FIXTURES = os.environ.get("BENCH_STATIC", "/tmp/bustapi-bench/static")

app = Flask(__name__, static_folder=FIXTURES, static_url_path="/static")


@app.route("/hello")
def hello():
    return {"message": "Hello, world!"}


@app.route("/video/<id>")
def stream_video(id):
    return send_file(f"{FIXTURES}/{id}.mp4", mimetype="video/mp4")
