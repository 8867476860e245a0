"""`tierwise worker --acl` (and `--list`) read the config's `dispatch` and `blackboard` sections only: an administrator
printing a worker's Redis rules needs none of the other sections' `${VAR}`s set -- before session 38 every one of them
(the provider keys in `headers`, a base_url) had to be exported where the line was printed."""

from __future__ import annotations

import shlex

import pytest
import yaml
from click.testing import CliRunner

from tests.dispatch.conftest import worker_config
from tierwise.cli import main


def _with_unset_elsewhere(tmp_path, **dispatch):
    data = worker_config("http://127.0.0.1:9", "tierwise-test:", worker_id="gpu-1", **dispatch)
    data["providers"]["box"]["base_url"] = "${ACL_TEST_GPU_URL}/v1"
    data["providers"]["box"]["headers"] = {"x-api-key": "${ACL_TEST_PROVIDER_TOKEN}"}
    data["server"] = {"port": "${ACL_TEST_PORT}"}
    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("role", [[], ["caller"], ["presence"]])
def test_acl_needs_only_the_variables_of_the_sections_it_reads(tmp_path, monkeypatch, role):
    for name in ("ACL_TEST_GPU_URL", "ACL_TEST_PROVIDER_TOKEN", "ACL_TEST_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACL_TEST_REDIS", "redis://127.0.0.1:6379/11")
    path = _with_unset_elsewhere(tmp_path, redis_url="${ACL_TEST_REDIS}", caller="billing")
    out = CliRunner().invoke(main, ["worker", "-c", str(path), "--acl", *role])
    assert out.exit_code == 0, out.output
    words = shlex.split(out.stdout)
    assert words[:2] == ["ACL", "SETUSER"] and "+select|11" in words, out.stdout  # its own ${VAR} was read


def test_a_variable_the_acl_reads_must_still_be_set(tmp_path, monkeypatch):
    monkeypatch.delenv("ACL_TEST_REDIS", raising=False)
    path = _with_unset_elsewhere(tmp_path, redis_url="${ACL_TEST_REDIS}")
    out = CliRunner().invoke(main, ["worker", "-c", str(path), "--acl"])
    assert out.exit_code == 2 and "ACL_TEST_REDIS is not set" in out.output, out.output
    assert "ACL_TEST_PROVIDER_TOKEN" not in out.output


def test_serving_still_needs_every_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("ACL_TEST_PROVIDER_TOKEN", raising=False)
    monkeypatch.setenv("ACL_TEST_GPU_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ACL_TEST_PORT", "8080")
    path = _with_unset_elsewhere(tmp_path)
    out = CliRunner().invoke(main, ["worker", "-c", str(path)])
    assert out.exit_code == 2 and "ACL_TEST_PROVIDER_TOKEN is not set" in out.output, out.output
