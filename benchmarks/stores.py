"""Folder runs on a bucket against the same runs on local folders: wall time and its ratio.

    python benchmarks/stores.py [--files 48] [--workers N] [--repeat 3] [--preset fast]

The bucket is moto's S3 server on 127.0.0.1 (``moto[server]``, in the test extra), started here
on the same machine: its own work (a Python HTTP server) is counted in the bucket's time, so
the ratio is an upper bound of what staging, uploads and listing add. Inputs are corpus clips
(``../shared/corpus`` or ``$DEID_CORPUS``) copied into a temporary folder and a bucket; nothing
is written into the repository. Each run is a fresh ``deid`` process; local and bucket runs
alternate, and the figures are medians over ``--repeat`` runs, ratios from the same run.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _roots import need_corpus  # noqa: E402


def timed(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one ``deid`` run, which must succeed."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "deid", *command], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"deid {' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=48, help="corpus clips in the folder")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--preset", default="fast")
    args = parser.parse_args()

    import fsspec
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    clips = sorted(need_corpus().glob("*/*.flac"))[: args.files]
    with tempfile.TemporaryDirectory(prefix="deid-bench-stores-") as scratch:
        root = Path(scratch)
        src = f"in-{uuid.uuid4().hex[:8]}"
        fs.mkdir(src)
        for clip in clips:
            target = root / "in" / clip.parent.name / clip.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(clip.read_bytes())
            fs.put_file(str(target), f"{src}/{clip.parent.name}/{clip.name}")
        modes = {"strip": ["strip"], f"anonymize {args.preset}": ["anonymize", "--preset", args.preset, "--seed", "1"]}
        print(f"{len(clips)} clips, {args.workers} workers, {args.repeat} runs each (median s; bucket / local)")
        print(f"{'run':24} {'local':>8} {'bucket':>8} {'ratio':>6} {'rerun local':>12} {'rerun bucket':>13}")
        for label, (command, *options) in modes.items():
            times: dict[str, list[float]] = {"local": [], "bucket": [], "rerun local": [], "rerun bucket": []}
            for i in range(args.repeat):
                out = f"out-{uuid.uuid4().hex[:8]}"
                fs.mkdir(out)
                where = {"local": (str(root / "in"), str(root / f"out{i}-{command}")),
                         "bucket": (f"s3://{src}", f"s3://{out}/o")}
                for name, (inp, dst) in where.items():
                    run = [command, inp, dst, *options, "--workers", str(args.workers)]
                    times[name].append(timed(run, env))
                    times[f"rerun {name}"].append(timed(run, env))  # everything already done: the resume path
            med = {name: statistics.median(values) for name, values in times.items()}
            print(f"{label:24} {med['local']:8.2f} {med['bucket']:8.2f} {med['bucket'] / med['local']:6.2f} "
                  f"{med['rerun local']:12.2f} {med['rerun bucket']:13.2f}")
    server.stop()


if __name__ == "__main__":
    main()
