"""The three seed examples in one app (DESIGN.md's contract), runnable unchanged."""

from bustapi import BustAPI, FileResponse, send_file

app = BustAPI(static_folder="static")  # every file under static/ is range-capable


@app.route("/video/<id>")
def stream_video(id: str) -> FileResponse:
    return send_file(f"secure_storage/videos/{id}.mp4", mimetype="video/mp4")


@app.route("/download")
def download_large_file() -> FileResponse:
    return FileResponse(
        path="data/dataset.csv",
        filename="custom_name.csv",
        media_type="text/csv",
        content_disposition_type="attachment",
    )


if __name__ == "__main__":
    app.run()
