"""A tus endpoint, as bench/tus_upload.py measures it:

    python bench/apps/bustapi_tus_app.py --port 18011 --folder /tmp/bustapi-bench/tus [--no-fsync]

Uploads land in ``--folder``; on completion the file is removed again (the benchmark
uploads the same gigabyte several times), which is the one call into Python per upload.
"""

from __future__ import annotations

import argparse
import os

from bustapi import BustAPI, ResumableUpload


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18011)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--no-fsync", action="store_true")
    args = parser.parse_args()

    app = BustAPI(static_folder=None)

    def completed(upload: ResumableUpload) -> None:
        os.remove(upload.path)

    app.resumable_uploads("/files/", args.folder, on_complete=completed, fsync=not args.no_fsync)
    app.run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
