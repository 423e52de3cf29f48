"""The same app in Starlette (ASGI): run under Granian and under uvicorn.

    granian --interface asgi --workers 1 --host 127.0.0.1 --port 18002 starlette_app:app

``/hello`` returns the same JSON; ``/static`` is ``StaticFiles`` over ``BENCH_STATIC``
and ``/video/{id}`` a ``FileResponse`` (both answer Range requests in Starlette >= 0.39).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

FIXTURES = os.environ.get("BENCH_STATIC", "/tmp/bustapi-bench/static")


async def hello(request):
    return JSONResponse({"message": "Hello, world!"})


async def stream_video(request):
    return FileResponse(f"{FIXTURES}/{request.path_params['id']}.mp4", media_type="video/mp4")


app = Starlette(
    routes=[
        Route("/hello", hello),
        Route("/video/{id}", stream_video),
        Mount("/static", StaticFiles(directory=FIXTURES), name="static"),
    ]
)
