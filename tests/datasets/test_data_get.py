"""`tierwise data get routellm` against a loopback HTTP server holding the repository's paths.

The server serves files the test writes (small, with the real manifest's shape: path, size,
SHA-256), honours Range requests, and can corrupt, pad, cut off or ignore ranges on demand."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.harness import unavailable
from tierwise.cli import main
from tierwise.datasets import routellm
from tierwise.datasets.fetch import FetchError, RemoteFile, fetch_all, fetch_one
from tierwise.evaluation.loaders import data_root

# The copy in ../shared/data (or $TIERWISE_DATA), looked up before any test changes the environment.
SHARED = data_root() or Path("/nonexistent")


@dataclass
class Mirror:
    files: dict[str, bytes]  # URL path -> body
    corrupt: set[str] = field(default_factory=set)  # same size, one byte changed
    pad: set[str] = field(default_factory=set)  # more bytes than the file has
    cut: dict[str, int] = field(default_factory=dict)  # stop after this many bytes (connection closed)
    no_length: bool = False  # no Content-Length: only the byte count can stop an overlong body
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


def serve(m: Mirror) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.lstrip("/")
            rng = self.headers.get("Range")
            m.requests.append((path, rng))
            if path not in m.files:
                self.send_error(404)
                return
            body = m.files[path]
            if path in m.corrupt:
                body = body[:-1] + bytes([body[-1] ^ 0xFF])
            if path in m.pad:
                body = body + b"x" * 4096
            status, start = 200, 0
            if rng and not m.ignore_range:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                status = 206
            chunk = body[start:]
            self.send_response(status)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            if path in m.cut:
                chunk = chunk[: m.cut[path]]
                self.send_header("Content-Length", str(len(body) - start))  # promises more than it sends
                self.send_header("Connection", "close")
            elif m.no_length:
                self.send_header("Connection", "close")
            else:
                self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            self.wfile.write(chunk)
            if path in m.cut or m.no_length:
                self.close_connection = True

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


def make_files(n: int = 3) -> dict[str, bytes]:
    return {f"routellm/evals/part{i}.csv": (f"prompt,ok\nq{i},True\n" * (200 + i)).encode() for i in range(n)}


def remote(files: dict[str, bytes], base: str) -> list[RemoteFile]:
    return [RemoteFile(p.removeprefix("routellm/evals/"), len(b), hashlib.sha256(b).hexdigest(), base + p)
            for p, b in files.items()]


@pytest.fixture
def mirror() -> Iterator[tuple[Mirror, str]]:
    m = Mirror(make_files())
    httpd, url = serve(m)
    yield m, url
    httpd.shutdown()
    httpd.server_close()


def test_fetches_every_file_and_keeps_what_is_already_right(mirror, tmp_path):
    m, url = mirror
    files = remote(m.files, url)
    assert sorted(fetch_all(files, tmp_path, max_total_bytes=1 << 20)) == sorted(f.path for f in files)
    for f in files:
        assert (tmp_path / f.path).read_bytes() == m.files["routellm/evals/" + f.path]
    assert not list(tmp_path.glob("*.part"))
    m.requests.clear()
    assert fetch_all(files, tmp_path, max_total_bytes=1 << 20) == [] and m.requests == []


def test_a_corrupt_file_is_refused_and_never_lands(mirror, tmp_path):
    m, url = mirror
    f = remote(m.files, url)[1]
    m.corrupt.add("routellm/evals/" + f.path)
    with pytest.raises(FetchError, match=f"{f.path}: checksum mismatch"):
        fetch_one(f, tmp_path / f.path)
    assert not (tmp_path / f.path).exists() and not list(tmp_path.iterdir())  # no file, no .part
    m.corrupt.clear()
    fetch_one(f, tmp_path / f.path)  # the next run starts clean
    assert (tmp_path / f.path).read_bytes() == m.files["routellm/evals/" + f.path]


@pytest.mark.parametrize("ignore_range", [False, True])
def test_a_broken_off_download_is_resumed(mirror, tmp_path, ignore_range):
    m, url = mirror
    f = remote(m.files, url)[0]
    key = "routellm/evals/" + f.path
    m.cut[key] = 1000
    with pytest.raises(FetchError, match="broke off after 1000 of .* run again to resume"):
        fetch_one(f, tmp_path / f.path)
    assert (tmp_path / (f.path + ".part")).stat().st_size == 1000
    del m.cut[key]
    m.ignore_range = ignore_range
    fetch_one(f, tmp_path / f.path)
    assert (tmp_path / f.path).read_bytes() == m.files[key]
    assert m.requests[-1] == (key, "bytes=1000-")  # asked for the rest; a server that ignores it is read anew


def test_a_part_file_that_is_not_a_prefix_fails_its_checksum_and_is_cleared(mirror, tmp_path):
    m, url = mirror
    f = remote(m.files, url)[0]
    (tmp_path / (f.path + ".part")).write_bytes(b"garbage" * 10)
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch_one(f, tmp_path / f.path)
    fetch_one(f, tmp_path / f.path)
    assert (tmp_path / f.path).read_bytes() == m.files["routellm/evals/" + f.path]


@pytest.mark.parametrize("no_length", [False, True])
def test_a_body_longer_than_the_file_is_refused(mirror, tmp_path, no_length):
    m, url = mirror
    f = remote(m.files, url)[2]
    m.pad.add("routellm/evals/" + f.path)
    m.no_length = no_length
    why = "the server sent more than" if no_length else "the server offers"
    with pytest.raises(FetchError, match=why):
        fetch_one(f, tmp_path / f.path)
    assert not (tmp_path / f.path).exists()
    assert not (tmp_path / (f.path + ".part")).exists() or (tmp_path / (f.path + ".part")).stat().st_size <= f.size


def test_the_total_is_capped_before_anything_is_fetched(mirror, tmp_path):
    m, url = mirror
    with pytest.raises(FetchError, match="over the cap"):
        fetch_all(remote(m.files, url), tmp_path, max_total_bytes=100)
    assert m.requests == []


def test_a_missing_file_says_which_and_the_status(mirror, tmp_path):
    _, url = mirror
    f = RemoteFile("nope.csv", 10, "0" * 64, url + "routellm/evals/nope.csv")
    with pytest.raises(FetchError, match="nope.csv: HTTP 404"):
        fetch_one(f, tmp_path / f.path)


# ------------------------------------------------------------------------------ the command


def real_mirror_files() -> dict[str, bytes]:
    """The real manifest's files, with the bytes of the copy in ../shared/data."""
    return {f.url.removeprefix(routellm.BASE_URL): (SHARED / routellm.FOLDER / f.path).read_bytes()
            for f in routellm.manifest()}


@pytest.fixture
def real_mirror() -> Iterator[tuple[Mirror, str]]:
    if not (SHARED / routellm.FOLDER).is_dir():
        unavailable("../shared/data is not beside this checkout (nor $TIERWISE_DATA)")
    m = Mirror(real_mirror_files())
    httpd, url = serve(m)
    yield m, url
    httpd.shutdown()
    httpd.server_close()


def test_the_manifest_matches_the_copy_in_shared_data():
    if not (SHARED / routellm.FOLDER).is_dir():
        unavailable("../shared/data is not beside this checkout (nor $TIERWISE_DATA)")
    assert routellm.missing(SHARED) == []
    assert sum(row[1] for row in routellm.FILES) < routellm.MAX_TOTAL_BYTES


def test_data_get_downloads_where_eval_finds_it(real_mirror, tmp_path, monkeypatch):
    m, url = real_mirror
    monkeypatch.setenv("TIERWISE_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no ../shared/data from here
    monkeypatch.setenv(routellm.BASE_URL_ENV, url)
    res = CliRunner().invoke(main, ["data", "get", "routellm"])
    assert res.exit_code == 0, res.output
    assert f"{len(routellm.FILES)} files fetched" in res.output
    assert routellm.missing(tmp_path / "data") == []
    assert data_root() == (tmp_path / "data").resolve()
    res = CliRunner().invoke(main, ["eval", "mmlu", "--router", "linear", "--ci", "0", "--folds", "2"])
    assert res.exit_code == 0, res.output
    m.requests.clear()
    res = CliRunner().invoke(main, ["data", "get", "routellm"])
    assert "already on disk" in res.output and m.requests == []


def test_data_get_uses_the_data_already_on_disk(real_mirror, monkeypatch):
    m, _ = real_mirror
    monkeypatch.setenv("TIERWISE_DATA", str(SHARED))
    res = CliRunner().invoke(main, ["data", "get", "routellm"])
    assert res.exit_code == 0 and f"already on disk: {SHARED.resolve() / routellm.FOLDER}" in res.output
    assert m.requests == []


def test_data_get_finds_the_data_in_shared_data_beside_the_project(real_mirror, tmp_path, monkeypatch):
    m, _ = real_mirror
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(SHARED)
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")  # ../shared/data from here, as on the project's machines
    monkeypatch.delenv("TIERWISE_DATA", raising=False)
    res = CliRunner().invoke(main, ["data", "get", "routellm"])
    assert res.exit_code == 0 and "already on disk" in res.output and m.requests == []


def test_data_get_reports_a_corrupt_file(real_mirror, tmp_path, monkeypatch):
    m, url = real_mirror
    bad = "routellm/evals/gsm8k/gsm8k_responses.csv"
    m.corrupt.add(bad)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERWISE_DATA", raising=False)
    res = CliRunner().invoke(main, ["data", "get", "routellm", "--to", str(tmp_path / "d"), "--base-url", url])
    assert res.exit_code == 1 and "gsm8k/gsm8k_responses.csv: checksum mismatch" in res.output
    assert not (tmp_path / "d" / routellm.FOLDER / "gsm8k" / "gsm8k_responses.csv").exists()


def test_an_unreachable_source_says_how_to_get_the_data_without_a_network(tmp_path, monkeypatch):
    # Before: only "cannot reach https://raw.githubusercontent.com/... (Name or service not known)" on a machine
    # without the internet, with no word on the mirror option or on copying the folder in.
    import socket

    with socket.socket() as closed:  # a loopback port with nothing listening: refused at once
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERWISE_DATA", raising=False)
    res = CliRunner().invoke(main, ["data", "get", "routellm", "--to", str(tmp_path / "d"), "--base-url", url])
    assert res.exit_code == 1 and "cannot reach" in res.output, res.output
    assert "--base-url URL" in res.output and f"TIERWISE_DATA at the folder holding {routellm.FOLDER}/" in res.output
