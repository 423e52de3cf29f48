#!/usr/bin/env bash
# Regenerate the demo/test clip python/bustapi/demo/static/video.mp4.
#
# The clip is committed, so neither ffmpeg nor this script is needed to run the
# demo or the tests. It is kept so the clip is reproducible and its properties are
# documented:
#
#   * H.264 Main profile, yuv420p, 426x240, 25 fps, 10 s, a keyframe every second
#     (-g 25, no scene-cut keyframes), ~300 kbit/s.
#     H.264 because every browser decodes it (Safari and Firefox included), and
#     Debian 12's `chromium` package is built with proprietary codecs: checked in
#     headless Chromium 156, canPlayType('video/mp4; codecs="avc1.4D401E, mp4a.40.2"')
#     is "probably" and the clip plays and seeks.
#   * A silent mono AAC track, so the file is an ordinary audio+video MP4 without
#     making noise in the demo.
#   * testsrc2's moving pattern plus a burnt-in timestamp and frame number, so a
#     seek can be checked by eye.
#   * The `moov` atom (the index) is at the END of the file: ffmpeg's default, i.e.
#     deliberately NO `-movflags +faststart`. A browser must then fetch the end of
#     the file before it can play at all, and without working HTTP Range support
#     Chromium reports the media as not seekable and every seek lands back at 0.
#     The check at the bottom of this script enforces that layout.
#   * -threads 1 and the bitexact flags make the output byte-identical from run to
#     run with a given ffmpeg/x264 build (Debian 12: ffmpeg 5.1, x264 0.164).
#
# Usage: python/bustapi/demo/make_video.sh [output.mp4]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/static/video.mp4}"
python="${PYTHON:-python3}"

command -v ffmpeg >/dev/null || {
    echo "ffmpeg not found (Debian: apt-get install -y ffmpeg)" >&2
    exit 1
}
mkdir -p "$(dirname "$out")"

ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=426x240:rate=25:duration=10" \
    -f lavfi -i "anullsrc=channel_layout=mono:sample_rate=44100" \
    -vf "drawtext=text='%{pts\:hms}  frame %{n}':x=10:y=h-34:fontsize=20:fontcolor=white:box=1:boxcolor=black@0.6" \
    -c:v libx264 -profile:v main -pix_fmt yuv420p \
    -g 25 -keyint_min 25 -sc_threshold 0 -b:v 300k -maxrate 400k -bufsize 600k \
    -c:a aac -b:a 32k \
    -shortest -map_metadata -1 \
    -threads 1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
    "$out"

# Walk the top-level MP4 boxes and insist that `moov` comes after `mdat`.
"$python" - "$out" <<'EOF'
import struct
import sys

path = sys.argv[1]
boxes = []
with open(path, "rb") as f:
    total = f.seek(0, 2)
    offset = 0
    while offset < total:
        f.seek(offset)
        size, kind = struct.unpack(">I4s", f.read(8))
        if size == 1:  # 64-bit "largesize" follows the type
            size = struct.unpack(">Q", f.read(8))[0]
        elif size == 0:  # box extends to the end of the file
            size = total - offset
        if size < 8:
            sys.exit(f"{path}: corrupt box {kind!r} at offset {offset}")
        boxes.append((kind.decode("latin-1"), offset, size))
        offset += size

print(f"{path}: {total} bytes")
for kind, offset, size in boxes:
    print(f"  {kind} offset={offset} size={size}")
kinds = [kind for kind, _, _ in boxes]
if "moov" not in kinds or "mdat" not in kinds:
    sys.exit("expected both moov and mdat boxes")
if kinds.index("moov") < kinds.index("mdat"):
    sys.exit("moov precedes mdat (faststart layout); the clip must keep moov at the end")
print("ok: moov is after mdat, at the end of the file")
EOF
