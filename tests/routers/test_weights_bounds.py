"""A saved router's `.npz` is bounded before it is unpacked: a small file that would inflate past the
cap (a zip bomb) or an `.npy` header declaring a larger array than its member holds is a clear
RouterError naming the file, from `load_router` and from `tierwise eval`, not memory exhaustion."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tierwise.cli import main
from tierwise.evaluation.loaders import load_jsonl
from tierwise.routers import RouterError, base, load_router, make_router, save_router

FIXTURE = Path(__file__).parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl"


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return save_router(make_router("linear").fit(load_jsonl(FIXTURE)), tmp_path / "r")


def add_zeros(npz: Path, mib: int) -> None:
    """A member of `mib` MiB of zeros: deflated to about a thousandth of that."""
    with zipfile.ZipFile(npz, "a", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("pad.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (mib * 2**17,)})
        chunk = bytes(2**20)
        for _ in range(mib):
            f.write(chunk)


def test_a_zip_bomb_is_refused_before_it_inflates(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    npz = saved.with_suffix(".npz")
    assert load_router(saved).kind == "linear"
    add_zeros(npz, 64)
    assert npz.stat().st_size < 1 * 2**20  # small on disk, 64 MiB once inflated
    # a cap below 64 MiB stands for the real one (1 GiB) without inflating gigabytes in a test
    monkeypatch.setattr(base, "MAX_WEIGHTS_ARRAY_BYTES", 16 * 2**20, raising=False)
    with pytest.raises(RouterError) as e:
        load_router(saved)
    assert str(npz) in str(e.value) and re.search(r"would decompress to 6\d MiB, more than the 16 MiB", str(e.value))
    res = CliRunner().invoke(main, ["eval", str(FIXTURE), "-r", str(saved), "--ci", "0"])
    assert res.exit_code == 2 and str(npz) in res.output and "too large" in res.output, res.output
    monkeypatch.setattr(base, "MAX_WEIGHTS_FILE_BYTES", 4096, raising=False)
    with pytest.raises(RouterError, match="on disk, larger than"):
        load_router(saved)


def test_an_array_header_larger_than_its_member_is_refused_unread(saved: Path) -> None:
    """numpy allocates the header's shape before reading: 8 TiB declared, 16 bytes present."""
    npz = saved.with_suffix(".npz")
    with zipfile.ZipFile(npz, "a", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("forged.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)})
        f.write(bytes(16))
    with pytest.raises(RouterError) as e:
        load_router(saved)
    assert str(npz) in str(e.value) and "'forged.npy' declares an array larger than the member" in str(e.value)


def test_the_semantic_cache_verifier_model_is_bounded_the_same_way(tmp_path: Path) -> None:
    """`cache.semantic.verifier_path` names a user's file too: the same checks before it is read."""
    from tierwise.cache.pair_model import PairModel

    forged = tmp_path / "verifier.npz"
    with zipfile.ZipFile(forged, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("w_att.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (2**40,)})
        f.write(bytes(16))
    with pytest.raises(ValueError, match="declares an array larger than the member") as e:
        PairModel.load(forged)
    assert str(forged) in str(e.value)



@pytest.mark.parametrize(("in_profile", "declared"), [
    (False, {"n_buckets": 2**40}),  # the linear router's own: its weight vector and IDF are allocated from it
    (False, {"n_buckets": 2**29}),
    (True, {"dims": 2**20, "n_buckets": 2**18}),  # the shift profile's LSA: 2**38 cells
])
def test_sizes_the_json_declares_are_bounded_before_anything_is_allocated(saved: Path, in_profile: bool,
                                                                          declared: dict) -> None:
    """The .npz is bounded before it is read, but the JSON beside it said how large the vectors built around the
    arrays are (`n_buckets`, `dims`), and restoring allocated them first: 4 bytes a bucket, twice (a zeroed weight
    vector and an IDF of ones) before the arrays were checked against it. `n_buckets: 2**40` in a few bytes of
    JSON asked numpy for 4 TiB (a MemoryError and a traceback at start-up; at 2**32 the allocation succeeds and
    is filled, past the host's memory). Now a declared size is refused unless what it allocates fits the cap of
    the weights themselves."""
    from tierwise.routers.shift import TrainingProfile

    if in_profile:
        router = load_router(saved)
        router.profile = TrainingProfile.fit(load_jsonl(FIXTURE).prompts)
        saved = save_router(router, saved.parent / "with-profile")
    meta = json.loads(saved.read_text())
    (meta["profile"]["lsa"] if in_profile else meta).update(declared)
    saved.write_text(json.dumps(meta))
    with pytest.raises(RouterError, match=r"declares .* more than") as e:
        load_router(saved)
    assert str(saved) in str(e.value)


def test_a_router_json_nested_past_the_recursion_limit_is_a_router_error(saved: Path) -> None:
    saved.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(RouterError, match="not a router file"):
        load_router(saved)
    res = CliRunner().invoke(main, ["eval", str(FIXTURE), "-r", str(saved), "--ci", "0"])
    assert res.exit_code == 2 and "not a router file" in res.output and "Traceback" not in res.output, res.output


def test_a_router_json_past_its_cap_is_refused_unread(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "MAX_ROUTER_JSON_BYTES", 64)  # stands for the real 64 MiB
    with pytest.raises(RouterError, match=r"not a router file \(larger than"):
        load_router(saved)
