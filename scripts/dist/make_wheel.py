"""Makes siotap's Python wheel: the native binary as the wheel's script, so that `pip install`
puts `siotap` on PATH (the layout ruff's wheels use), plus `python -m siotap`. Standard library
only: a wheel is a zip with its metadata and a RECORD of hashes."""
import argparse
import base64
import hashlib
import pathlib
import zipfile

MAIN = '''"""`python -m siotap`: runs the siotap binary this wheel installed."""
import os
import shutil
import sys
import sysconfig


def binary():
    for scheme in (None, f"{os.name}_user"):
        try:
            folder = sysconfig.get_path("scripts", scheme) if scheme else sysconfig.get_path("scripts")
        except KeyError:
            continue
        path = os.path.join(folder, "siotap")
        if os.path.isfile(path):
            return path
    found = shutil.which("siotap")
    if found:
        return found
    raise SystemExit("siotap: the binary this package installs is not where pip put its scripts")


if __name__ == "__main__":
    path = binary()
    os.execv(path, [path, *sys.argv[1:]])
'''


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--glibc", required=True, help="the newest glibc symbol version the binary uses, e.g. 2.34")
    parser.add_argument("--license", required=True)
    parser.add_argument("--third-party", required=True)
    parser.add_argument("--readme", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    major, minor = args.glibc.split(".")[:2]
    tag = f"py3-none-manylinux_{major}_{minor}_x86_64"
    name = f"siotap-{args.version}"
    info = f"{name}.dist-info"
    readme = pathlib.Path(args.readme).read_text()
    metadata = "\n".join([
        "Metadata-Version: 2.1",
        "Name: siotap",
        f"Version: {args.version}",
        "Summary: Record/replay debugging proxy for Socket.IO: decodes every packet, inspects JWTs, captures sessions and replays them as tests",
        "License: Apache-2.0",
        "Keywords: socket.io,engine.io,websocket,proxy,debugging,jwt",
        "Classifier: Environment :: Console",
        "Classifier: Operating System :: POSIX :: Linux",
        "Classifier: Topic :: Software Development :: Debuggers",
        "Classifier: Topic :: Software Development :: Testing",
        "Requires-Python: >=3.8",
        "Description-Content-Type: text/markdown",
        "",
        readme,
    ])
    wheel = "\n".join(["Wheel-Version: 1.0", "Generator: siotap scripts/dist/make_wheel.py", "Root-Is-Purelib: false", f"Tag: {tag}", ""])
    files = [
        ("siotap/__init__.py", b'"""siotap, a Socket.IO debugging proxy: the `siotap` command is the binary this wheel installs."""\n', 0o644),
        ("siotap/__main__.py", MAIN.encode(), 0o644),
        (f"{name}.data/scripts/siotap", pathlib.Path(args.binary).read_bytes(), 0o755),
        (f"{info}/LICENSE", pathlib.Path(args.license).read_bytes(), 0o644),
        (f"{info}/THIRD_PARTY_LICENSES", pathlib.Path(args.third_party).read_bytes(), 0o644),
        (f"{info}/METADATA", metadata.encode(), 0o644),
        (f"{info}/WHEEL", wheel.encode(), 0o644),
    ]
    out = pathlib.Path(args.out) / f"{name}-{tag}.whl"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        lines = []
        for path, data, mode in files:
            entry = zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0))
            entry.external_attr = (0o100000 | mode) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
            lines.append(record_line(path, data))
        lines.append(f"{info}/RECORD,,")
        archive.writestr(zipfile.ZipInfo(f"{info}/RECORD", date_time=(2026, 1, 1, 0, 0, 0)), "\n".join(lines) + "\n")
    print(f"package.sh: {out}")


if __name__ == "__main__":
    main()
