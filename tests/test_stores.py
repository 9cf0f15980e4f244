"""Folder runs on object stores (a real S3 API: moto's server on 127.0.0.1), memory://, and folders of links.

Each bucket run is compared byte for byte with the same run on local folders.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from moto.server import ThreadedMotoServer
from test_batch import BAD, GOOD, SEED, corpus_clips, digest, link_or_copy, run, tree  # noqa: F401 - tree is a fixture

from deid.batch import run_batch
from deid.batch.manifest import LEASE_SECONDS, _machine, writer_lock
from deid.batch.storage import redact, shown
from deid.keys import resolve_key
from deid.presets import load_preset

#: Credentials of the moto server; the secret is a marker that must never be printed.
SECRET = "moto-secret-never-printed-4f9a1c"


@pytest.fixture(scope="module")
def s3() -> Iterator[fsspec.AbstractFileSystem]:
    """A moto S3 server on 127.0.0.1 for this module, reached through the standard AWS variables.

    The local pool's fork server is started first, as an earlier run in the same process would
    have: its environment is older than the variables, which the workers must see all the same.
    """
    from multiprocessing import forkserver

    from deid.batch import executors

    executors._context()
    forkserver.ensure_running()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        patch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
        patch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        yield fs
    server.stop()


def bucket(fs: fsspec.AbstractFileSystem, label: str) -> str:
    name = f"{label}-{uuid.uuid4().hex[:10]}"
    fs.mkdir(name)
    return name


def upload(fs: fsspec.AbstractFileSystem, root: Path, prefix: str) -> None:
    """Every regular file under ``root`` (links are not followed: a bucket has none)."""
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if not path.is_symlink():
                fs.put_file(str(path), f"{prefix}/{path.relative_to(root).as_posix()}")


def objects(fs: fsspec.AbstractFileSystem, prefix: str) -> dict[str, str]:
    """SHA-256 of every object under ``prefix`` except deid's state, by relative path."""
    fs.invalidate_cache()
    import hashlib

    return {path[len(prefix) + 1:]: hashlib.sha256(fs.cat_file(path)).hexdigest()
            for path in fs.find(prefix) if "/.deid/" not in path}


def files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): digest(p) for p in root.rglob("*") if p.is_file() and ".deid" not in p.parts}


def failures(text: str) -> list[str]:
    return sorted(line for line in text.splitlines() if line.startswith("failed: "))


def test_bucket_folder_with_bad_files_matches_the_local_run(s3: fsspec.AbstractFileSystem, tree: Path,
                                                           tmp_path: Path) -> None:
    local = tmp_path / "local"
    code, local_text = run("anonymize", tree, local, *SEED, "--workers", "2")
    assert code == 2
    src, dst = bucket(s3, "in"), bucket(s3, "out")
    upload(s3, tree, f"{src}/calls")
    code, text = run("anonymize", f"s3://{src}/calls", f"s3://{dst}/anon", *SEED, "--workers", "2")
    assert code == 2, text
    assert "anonymized   │     3" in text and "failed       │     4" in text
    assert failures(text) == failures(local_text) and len(failures(text)) == len(BAD)
    assert any(line.startswith("skipped: notes.txt: not an audio file") for line in text.splitlines())
    assert objects(s3, f"{dst}/anon") == files(local) and set(files(local)) == GOOD
    state = s3.find(f"{dst}/anon/.deid")
    assert len([p for p in state if "/records/" in p]) == 3 and not [p for p in state if p.endswith("/lock")]
    assert "Traceback" not in text and SECRET not in text


def test_bucket_resume_redoes_only_stale_or_damaged_outputs(s3: fsspec.AbstractFileSystem, tree: Path,
                                                           tmp_path: Path) -> None:
    local = tmp_path / "local"
    run("anonymize", tree, local, *SEED, "--glob", "*.flac")
    src, dst = bucket(s3, "in"), bucket(s3, "out")
    upload(s3, tree, src)
    command = ("anonymize", f"s3://{src}", f"s3://{dst}", *SEED, "--glob", "*.flac")
    run(*command)
    code, text = run(*command)
    assert code == 2 and "already done │     3" in text  # the truncated FLAC still fails
    s3.pipe_file(f"{dst}/three.flac", s3.cat_file(f"{dst}/three.flac")[:1000])
    _, text = run(*command)
    assert "anonymized   │     1" in text and objects(s3, dst) == files(local)
    _, text = run(*command, "--force")
    assert "anonymized   │     3" in text and objects(s3, dst) == files(local)
    _, text = run("anonymize", f"s3://{src}", f"s3://{dst}", "--seed", "8", "--glob", "*.flac")
    assert "anonymized   │     3" in text


def test_bucket_rename_hashed_audit_and_strip_match_the_local_run(s3: fsspec.AbstractFileSystem, tree: Path,
                                                                 tmp_path: Path) -> None:
    options = (*SEED, "--glob", "*.flac", "--rename", "hashed")
    src, dst, clean = bucket(s3, "in"), bucket(s3, "out"), bucket(s3, "clean")
    upload(s3, tree, src)
    run("anonymize", tree, tmp_path / "local", *options, "--audit", tmp_path / "local.jsonl",
        "--rename-map", tmp_path / "local.csv")
    code, text = run("anonymize", f"s3://{src}", f"s3://{dst}", *options, "--audit", tmp_path / "bucket.jsonl",
                     "--rename-map", tmp_path / "bucket.csv")
    assert code == 2, text
    hashed = objects(s3, dst)
    assert hashed == files(tmp_path / "local") and all(len(Path(name).stem) == 32 for name in hashed)
    assert (tmp_path / "bucket.csv").read_text() == (tmp_path / "local.csv").read_text()

    def audit(name: str) -> list[dict[str, object]]:
        return sorted((json.loads(line) for line in (tmp_path / name).read_text().splitlines()), key=str)

    assert audit("bucket.jsonl") == audit("local.jsonl") and len(audit("local.jsonl")) == 3
    code, text = run("anonymize", f"s3://{src}", f"s3://{dst}", *SEED, "--audit", f"s3://{dst}/audit.jsonl")
    assert code == 1 and "--audit must be a local path" in text
    code, text = run("anonymize", f"s3://{src}", f"s3://{dst}", *SEED, "--neutral-mtime")
    assert code == 1 and "cannot date objects" in text

    assert run("strip", tree, tmp_path / "stripped", "--glob", "*.flac")[0] == 2
    code, text = run("strip", f"s3://{src}", f"s3://{clean}", "--glob", "*.flac")
    assert code == 2 and "stripped     │     3" in text, text
    assert objects(s3, clean) == files(tmp_path / "stripped")


def test_object_names_that_would_leave_the_output_folder_fail_and_write_nothing(
    s3: fsspec.AbstractFileSystem, tmp_path: Path
) -> None:
    """Keys are free text: ``in//x``, ``in/../../x``, ``in/./x`` are never made into paths, locally or in a bucket."""
    import boto3

    src, dst = bucket(s3, "in"), bucket(s3, "out")
    marker = f"deid-test-{uuid.uuid4().hex[:8]}"
    hostile = [f"../../{marker}.flac", f"/{marker}.flac", f"./{marker}.flac", f"x/../{marker}.flac"]
    clip = corpus_clips(1)[0].read_bytes()
    client = boto3.client("s3")
    for name in ["ok one.flac", "q?x=1#h%20ü.flac", *hostile]:
        client.put_object(Bucket=src, Key=f"in/{name}", Body=clip)
    client.put_object(Bucket=src, Key="in/junk.wav", Body=b"RIFF\x04\x00\x00\x00WAVEjunk")
    out = tmp_path / "a" / "b" / "out"
    for target in (out, f"s3://{dst}/o"):
        code, text = run("strip", f"s3://{src}/in", target)
        assert code == 2, text
        assert "stripped     │     2" in text and "failed       │     5" in text, text
        # A reason says what is wrong with the object, never names the local file that stood in for it.
        assert "failed: junk.wav: WAV file has no complete 'fmt ' chunk" in text, text
        assert "/dev/fd" not in text and "deid-stage" not in text and " object at 0x" not in text
        for name in hostile:
            assert any(line.startswith(f"failed: {name}: its name has an empty, '.' or '..' part")
                       for line in text.splitlines()), (name, text)
    assert sorted(files(out)) == ["ok one.flac", "q?x=1#h%20ü.flac"]
    assert objects(s3, f"{dst}/o") == files(out)
    assert not [p for p in tmp_path.rglob(f"{marker}*")] and not Path(f"/{marker}.flac").exists()


def test_a_second_writer_into_a_bucket_is_refused_and_a_dead_runs_lock_taken_over(
    s3: fsspec.AbstractFileSystem, tree: Path
) -> None:
    src, dst = bucket(s3, "in"), bucket(s3, "out")
    upload(s3, tree, src)
    command = ("strip", f"s3://{src}", f"s3://{dst}/o", "--glob", "*.flac")
    with writer_lock(f"s3://{dst}/o"):
        held = json.loads(s3.cat_file(f"{dst}/o/.deid/lock"))
        code, text = run(*command)
    assert code == 1 and f"another deid run (pid {os.getpid()} on this machine" in text, text
    assert held["pid"] == os.getpid() and set(held) == {"run", "machine", "pid", "renewed"}
    assert not s3.exists(f"{dst}/o/.deid/lock"), "the lock goes with its run"

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    now = round(time.time())
    cases = [({"pid": dead.pid, "machine": _machine(), "renewed": now}, 2),  # this machine, process gone
             ({"pid": 1, "machine": "elsewhere", "renewed": now - LEASE_SECONDS - 5}, 2),  # not renewed
             ({"pid": 1, "machine": "elsewhere", "renewed": now}, 1)]  # alive elsewhere
    for holder, expected in cases:
        s3.pipe_file(f"{dst}/o/.deid/lock", json.dumps({"run": "r", **holder}).encode())
        code, text = run(*command)
        assert code == expected, (holder, text)
        if expected == 1:
            assert "on another machine" in text and "s ago" in text
    s3.pipe_file(f"{dst}/o/.deid/lock", b"not a lock")
    code, text = run(*command)
    assert code == 1 and "is not a deid lock" in text


@pytest.mark.slow
def test_sigkill_mid_bucket_run_then_rerun_finishes_with_the_local_bytes(s3: fsspec.AbstractFileSystem,
                                                                        tmp_path: Path) -> None:
    """Kill a bucket run (all its processes, then only the main one); nothing partial is visible, a rerun finishes.

    The staged inputs are anonymous files: no copy of an original is ever left in the temp folder.
    """
    root = tmp_path / "in"
    for i, clip in enumerate(corpus_clips(24)):
        link_or_copy(clip, root / f"d{i % 3}" / clip.name)
    slow = ("--preset", "vpc-mcadams")  # slow enough to be killed in the middle (see test_batch)
    reference = tmp_path / "reference"
    assert run("anonymize", root, reference, *SEED, *slow, "--workers", "2")[0] == 0
    originals = {digest(p) for p in root.rglob("*.flac")}
    src, dst = bucket(s3, "in"), bucket(s3, "out")
    upload(s3, root, src)
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    command = [sys.executable, "-m", "deid.cli", "anonymize", f"s3://{src}", f"s3://{dst}", *SEED, *slow,
               "--workers", "2"]

    def visible() -> dict[str, str]:
        return objects(s3, dst)

    for delay, whole_group in ((1.5, True), (3.0, False)):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.monotonic() + delay + 60
        while time.monotonic() < deadline and len(visible()) < 2 and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(delay / 3)
        if whole_group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()  # the workers notice and exit
        proc.wait()
        time.sleep(0.5)
        done = visible()
        if whole_group:
            assert 0 < len(done) < 24, "the kill must land mid-run"
        assert all(sha == digest(reference / rel) for rel, sha in done.items()), "every visible object is complete"
        left = [p for p in temp.rglob("*") if p.is_file()]
        assert not {digest(p) for p in left} & originals, "an original was left in the temp folder"

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert visible() == files(reference) and len(files(reference)) == 24
    assert not list(temp.glob("deid-stage-*")), "the staging folders of killed workers are removed"


def test_dask_cluster_reads_one_bucket_and_writes_another(s3: fsspec.AbstractFileSystem, tree: Path,
                                                          tmp_path: Path) -> None:
    """A real LocalCluster (two worker processes, credentials and endpoint from their environment)."""
    distributed = pytest.importorskip("distributed", reason="needs the dask extra: pip install 'deid-audio[dask]'")
    local = tmp_path / "local"
    assert run("anonymize", tree, local, *SEED)[0] == 2
    src, dst = bucket(s3, "in"), bucket(s3, "out")
    upload(s3, tree, src)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        options = (*SEED, "--executor", "dask", "--scheduler", cluster.scheduler_address)
        code, text = run("anonymize", f"s3://{src}", f"s3://{dst}/anon", *options)
        assert code == 2, text
        assert "anonymized   │     3" in text and "failed       │     4" in text
        for rel, why in BAD.items():
            assert any(line.startswith(f"failed: {rel}:") and why in line for line in text.splitlines())
        assert objects(s3, f"{dst}/anon") == files(local)
        code, text = run("anonymize", f"s3://{src}", f"s3://{dst}/anon", *options)
        assert code == 2 and "already done │     3" in text


#: Azurite's documented development account (public, the same in every Azurite).
AZURITE_ACCOUNT = ("devstoreaccount1",
                   "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")


@pytest.fixture
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fsspec.AbstractFileSystem]:
    """Azurite's blob service (npm ``azurite``, installed by .ci/run) on 127.0.0.1, reached through adlfs.

    Found as ``$DEID_AZURITE`` or ``azurite-blob`` on the PATH.
    """
    import shutil
    import socket

    binary = os.environ.get("DEID_AZURITE") or shutil.which("azurite-blob")
    if not binary:
        pytest.skip("azurite-blob not found: npm install -g azurite@3 (or set DEID_AZURITE)")
    pytest.importorskip("adlfs", reason="needs the azure extra: pip install 'deid-audio[azure]'")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The newest Azure SDK can speak an API version a released Azurite does not know yet.
    options = ["--inMemoryPersistence", "--disableTelemetry", "--silent", "--skipApiVersionCheck"]
    server = subprocess.Popen([binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), *options],
                              cwd=tmp_path_factory.mktemp("azurite"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "azurite did not start"
                time.sleep(0.2)
        name, secret = AZURITE_ACCOUNT
        with pytest.MonkeyPatch.context() as patch:
            for variable in [v for v in os.environ if v.startswith("AZURE_")]:
                patch.delenv(variable)
            patch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                         f"DefaultEndpointsProtocol=http;AccountName={name};AccountKey={secret};"
                         f"BlobEndpoint=http://127.0.0.1:{port}/{name};")
            yield fsspec.filesystem("az", skip_instance_cache=True)
    finally:
        server.kill()
        server.wait()


def test_azure_container_folder_with_bad_files_matches_the_local_run(azure: fsspec.AbstractFileSystem, tree: Path,
                                                                     tmp_path: Path) -> None:
    """az:// through adlfs against Azurite: the same bytes and summary as locally, resume, the lock."""
    local = tmp_path / "local"
    code, local_text = run("anonymize", tree, local, *SEED, "--workers", "2")
    assert code == 2
    azure.mkdir("raw")
    azure.mkdir("review")
    upload(azure, tree, "raw/calls")
    command = ("anonymize", "az://raw/calls", "az://review/anon", *SEED, "--workers", "2")
    code, text = run(*command)
    assert code == 2, text
    assert "anonymized   │     3" in text and "failed       │     4" in text
    assert failures(text) == failures(local_text)
    assert objects(azure, "review/anon") == files(local) and set(files(local)) == GOOD
    state = azure.find("review/anon/.deid")
    assert len([p for p in state if "/records/" in p]) == 3 and not [p for p in state if p.endswith("/lock")]
    code, text = run(*command)
    assert code == 2 and "already done │     3" in text, text
    assert AZURITE_ACCOUNT[1] not in text
    with writer_lock("az://review/anon"):
        code, text = run(*command)
    assert code == 1 and "another deid run" in text, text


def test_memory_store_runs_in_this_process_with_the_local_bytes(tree: Path, tmp_path: Path) -> None:
    """memory:// exists only in this process: its files are done here, for every link scope; Dask is refused."""
    memory = fsspec.filesystem("memory")
    prefix = f"/{uuid.uuid4().hex[:10]}"
    upload(memory, tree, f"{prefix}/in")
    pipeline, key = load_preset("fast"), resolve_key(seed=7)
    for link in ("file", "speaker"):
        speaker = (lambda src: Path(str(src)).parent.name) if link == "speaker" else None
        local = run_batch(tree, tmp_path / link, pipeline=pipeline, key=key, link=link, speaker_for=speaker)
        stored = run_batch(f"memory://{prefix}/in", f"memory://{prefix}/{link}", pipeline=pipeline, key=key,
                           link=link, speaker_for=speaker, workers=2)
        assert stored.exit_code == local.exit_code == 2
        assert sorted((o.rel, o.status, o.reason) for o in stored.outcomes) == sorted(
            (o.rel, o.status, o.reason) for o in local.outcomes)
        assert objects(memory, f"{prefix}/{link}") == files(tmp_path / link) and set(files(tmp_path / link)) == GOOD
    code, text = run("anonymize", f"memory://{prefix}/in", f"memory://{prefix}/dask", *SEED, "--executor", "dask",
                     "--scheduler", "tcp://127.0.0.1:1")
    assert code == 1 and "memory:// exists only inside this process" in text


def test_store_errors_are_one_line_without_credentials(tree: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = subprocess.run([sys.executable, "-m", "deid", "anonymize", tree, "s3://nowhere/out", *SEED],
                            capture_output=True, text=True, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("deid: error: s3://nowhere/out"), lines
    for secret in (SECRET, "AKIAIOSFODNN7EXAMPLE"):
        assert secret not in result.stdout + result.stderr
    signed = ("Could not connect to the endpoint URL: \"https://b.s3.amazonaws.com/k.wav?X-Amz-Algorithm=AWS4"
              "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20260101&X-Amz-Signature=0badc0ffee\" "
              f"Authorization: AWS4-HMAC-SHA256 Signature=feedface secret {SECRET}")
    cleaned = redact(signed)
    for secret in ("AKIAIOSFODNN7EXAMPLE", "0badc0ffee", "feedface", SECRET):
        assert secret not in cleaned, cleaned
    assert "https://b.s3.amazonaws.com/k.wav" in cleaned
    assert shown("s3://key:secret@bucket/p?token=x") == "s3://bucket/p"
    code, text = run("anonymize", tree / "three.flac", "s3://bucket/x.flac", *SEED)
    assert code == 1 and "single file" in text


# Folders of links (review queues): --follow-links.

@pytest.fixture
def queue(tmp_path: Path) -> Path:
    """A review queue: links to files and to a folder of an archive outside it, and a loop back to the queue."""
    archive, queue = tmp_path / "archive", tmp_path / "queue"
    clips = corpus_clips(3)
    link_or_copy(clips[0], archive / "2024" / "a.flac")
    link_or_copy(clips[1], archive / "2024" / "b.flac")
    link_or_copy(clips[2], archive / "2025" / "c.flac")
    (queue / "today").mkdir(parents=True)
    (queue / "today" / "first.flac").symlink_to(archive / "2024" / "a.flac")
    (queue / "today" / "second.flac").symlink_to(archive / "2024" / "b.flac")
    (queue / "older").symlink_to(archive / "2025", target_is_directory=True)
    (archive / "2025" / "back").symlink_to(queue, target_is_directory=True)
    return queue


@pytest.mark.parametrize("command", ["anonymize", "strip"])
def test_follow_links_into_an_archive(queue: Path, tmp_path: Path, command: str) -> None:
    options = (*SEED, "--preset", "fast") if command == "anonymize" else ()
    code, text = run(command, queue, tmp_path / "plain", *options)
    assert code == 1 and text.count("link leads outside the input folder") == 3, text
    code, text = run(command, queue, tmp_path / "out", *options, "--follow-links")
    assert code == 0, text
    assert set(files(tmp_path / "out")) == {"today/first.flac", "today/second.flac", "older/c.flac"}
    assert any(line.startswith("skipped: older/back:") and "loop" in line for line in text.splitlines()), text
    # The same bytes as the archive's own files give.
    archive = tmp_path / "archive"
    assert run(command, archive, tmp_path / "direct", *options)[0] == 0
    direct = files(tmp_path / "direct")
    out = files(tmp_path / "out")
    assert out["today/first.flac"] == direct["2024/a.flac"] and out["older/c.flac"] == direct["2025/c.flac"]
    assert "already done │     3" in run(command, queue, tmp_path / "out", *options, "--follow-links")[1]


def test_follow_links_never_reads_the_output_folder(queue: Path, tmp_path: Path) -> None:
    """Neither the output folder, nor a folder or a file in it, is read through a link."""
    out = tmp_path / "out"
    out.mkdir()
    (queue / "results").symlink_to(out, target_is_directory=True)
    code, text = run("strip", queue, out, "--follow-links")
    assert code == 0 and "skipped: results: link leads into the output folder" in text, text
    (queue / "done").symlink_to(out / "today", target_is_directory=True)
    (queue / "again.flac").symlink_to(out / "older" / "c.flac")
    code, text = run("strip", queue, out, "--follow-links")
    assert code == 0 and "already done │     3" in text and "results/" not in text, text
    for name in ("results", "done", "again.flac"):
        assert f"skipped: {name}: link leads into the output folder, never read as input" in text, text
    assert set(files(out)) == {"today/first.flac", "today/second.flac", "older/c.flac"}
    # Through a link to a folder that holds it, the output folder is reached as a real folder: skipped too.
    (queue / "up").symlink_to(tmp_path, target_is_directory=True)
    code, text = run("strip", queue, out, "--follow-links", "--glob", "up/*/today/*")
    assert "skipped: up/out: the output folder" in text, text


def test_staging_leaves_nothing_in_the_temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An output staged for a store is removed whatever happens; a dead process's staging folder is swept."""
    from deid.batch import storage

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = storage.open_folder(f"memory://{uuid.uuid4().hex[:10]}")
    with pytest.raises(RuntimeError), folder.output("a/b.flac") as local:
        local.write_bytes(b"half")
        raise RuntimeError
    with folder.output("a/c.flac") as local:
        assert local.suffix == ".flac" and oct(local.parent.stat().st_mode & 0o777) == "0o700"
        local.write_bytes(b"whole")
    assert folder.read_text("a/c.flac") == "whole" and not folder.read_text("a/b.flac")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f"deid-stage-{dead.pid}-abcdefgh").mkdir()
    (tmp_path / f"deid-stage-{dead.pid}-abcdefgh" / "output.flac").write_bytes(b"x")
    (tmp_path / f"deid-stage-{os.getpid()}-live").mkdir()
    (tmp_path / "deid-stage-notes").mkdir()
    assert storage.sweep_staging(force=True) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"deid-stage-{os.getpid()}-live", "deid-stage-notes"]


def test_the_speaker_of_an_object_is_its_prefixs_last_folder_or_its_map_entry() -> None:
    from deid.errors import DeidError
    from deid.speakers import speaker_of

    url = "s3://calls/2026/alice/one.flac"
    assert speaker_of(url, None) == "alice"
    assert speaker_of(url, {"one.flac": "A"}) == "A" and speaker_of(url, {url: "B", "one.flac": "A"}) == "B"
    with pytest.raises(DeidError, match="not listed in the speaker map"):
        speaker_of(url, {"two.flac": "A"})
