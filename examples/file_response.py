"""``FileResponse`` for more control: a CSV download under another name.
Run from a directory containing ``data/dataset.csv``."""

from bustapi import BustAPI, FileResponse

app = BustAPI()


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
