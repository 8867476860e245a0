"""Config slips that let protected data leave, named by `doctor` and `serve` with the fix:

- a provider written `locality: local` whose base_url is a hosted API (OpenRouter, OpenAI, ...) or a public IP
  address: privacy rules guard remote providers only, so protected data would reach it as written.
(A route rule that a client naming the model directly skipped is no longer warned about but enforced:
tests/privacy/test_direct_model_route_rule.py.)"""

from __future__ import annotations

import pytest
import yaml

from tests.cli.test_new_user import _serve_warnings
from tierwise.commands.privacy_checks import remote_marked_local, unmarked_local_providers
from tierwise.config import parse_config

PRIVATE = {"privacy": {"routes": {"main": {"pii": "local_only"}}}}


def _config(base_url: str, locality: str, **extra: object) -> str:
    return yaml.safe_dump({
        "ledger": {"enabled": False},
        "providers": {"cheap": {"kind": "openai", "base_url": base_url, "locality": locality,
                                "api_key_env": "CHEAP_KEY"}},
        "models": {"small": {"provider": "cheap", "model": "qwen/qwen-2.5-7b-instruct",
                             "price": {"input": 0.1, "output": 0.1}}},
        "routes": {"main": ["small"]}, **extra})


@pytest.mark.parametrize("base_url, locality, named", [
    ("https://openrouter.ai/api/v1", "local", "OpenRouter's hosted API (openrouter.ai)"),
    ("https://api.openai.com/v1", "local", "hosted API (api.openai.com)"),
    ("https://api.groq.com/openai/v1", "local", "hosted API (api.groq.com)"),
    ("http://8.8.8.8:8000/v1", "local", "a public address (8.8.8.8)"),
    ("https://openrouter.ai/api/v1", "remote", None),
    ("http://127.0.0.1:8080/v1", "local", None),
    ("http://10.0.0.5:8000/v1", "local", None),
    ("http://192.168.1.20:11434/v1", "local", None),
    ("http://gpu-box:8000/v1", "local", None),
    ("http://[fd00::5]:8000/v1", "local", None),
    # review30d: a user part hid the hosted API; the host is compared as the resolver reads it
    ("https://API.OPENAI.COM./v1", "local", "hosted API (api.openai.com)"),
    ("https://openrouter.ai./api/v1", "local", "OpenRouter's hosted API (openrouter.ai)"),
    ("http://134744072:8000/v1", "local", "a public address (134744072)"),
    ("http://0x08080808:8000/v1", "local", "a public address (0x08080808)"),
    ("http://[::ffff:8.8.8.8]:8000/v1", "local", "a public address (::ffff:8.8.8.8)"),
    ("http://ollama.default.svc.cluster.local:11434/v1", "local", None),   # k8s service
    ("http://100.64.1.2:8000/v1", "local", None),                          # Tailscale / CGNAT
    ("http://[fe80::1%25eth0]:8000/v1", "local", None),                     # link-local
])
def test_a_hosted_api_or_public_address_written_local_is_named(base_url, locality, named):
    # Before: nothing said a word; with `pii: local_only` the route sent addresses and names to OpenRouter as
    # written (the boundary sits in front of remote providers only), and its spend counted as local.
    warnings = remote_marked_local(parse_config(_config(base_url, locality, **PRIVATE)))
    if named is None:
        assert warnings == [], warnings
    else:
        assert len(warnings) == 1 and named in warnings[0], warnings
        assert warnings[0].startswith("provider cheap is `locality: local`") and \
            "Fix: `locality: remote`" in warnings[0], warnings
        assert "the `privacy:` rules let protected data reach it as written" in warnings[0], warnings


def test_a_user_part_in_the_url_does_not_hide_the_hosted_api():
    # Before: `https://user:key@api.openai.com/v1` (the key as the URL's password) written local: no word.
    cfg = yaml.safe_dump({"providers": {"p": {"kind": "openai", "base_url": "https://me:sk-x@api.openai.com/v1",
                                              "locality": "local"}},
                          "models": {"m": {"provider": "p", "model": "x"}}})
    [warning] = remote_marked_local(parse_config(cfg))
    assert "hosted API (api.openai.com)" in warning and "sk-x" not in warning, warning


@pytest.mark.parametrize("base_url, said", [
    ("http://127.0.0.1.example.com:8080/v1", False),  # a name: anyone's DNS may point it anywhere
    ("http://127.attacker.example/v1", False),
    ("http://127.0.0.1:8080/v1", True),
    ("http://LOCALHOST:8080/v1", True),
    ("http://localhost.:8080/v1", True),
    ("http://[::ffff:127.0.0.1]:8080/v1", True),
    ("http://0.0.0.0:8080/v1", True),
    ("http://[::1]:8080/v1", True),
])
def test_only_an_address_on_this_machine_is_called_local(base_url, said):
    # Before: any host starting with "127." was "on this machine ... Fix: `locality: local`": doctor told the
    # operator to mark `127.0.0.1.example.com` (a DNS name) local, the direction that lets protected data out.
    cfg = yaml.safe_dump({"providers": {"p": {"kind": "openai", "base_url": base_url}},
                          "models": {"m": {"provider": "p", "model": "x"}}})
    warnings = unmarked_local_providers(parse_config(cfg))
    assert bool(warnings) is said, warnings


def test_without_a_privacy_section_it_says_one_would_not_guard_it():
    warnings = remote_marked_local(parse_config(_config("https://openrouter.ai/api/v1", "local")))
    assert len(warnings) == 1 and "a `privacy:` section would not guard it" in warnings[0], warnings


def test_serve_says_it_before_serving(tmp_path):
    lines = _serve_warnings(tmp_path, _config("http://8.8.8.8:8000/v1", "local"))
    hits = [ln for ln in lines if "provider cheap is `locality: local`" in ln]
    assert len(hits) == 1 and hits[0].startswith("tierwise: warning: ") and "locality: remote" in hits[0], lines


def test_doctor_says_it(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from tierwise.cli import main as cli

    path = tmp_path / "tierwise.yaml"
    path.write_text(_config("http://8.8.8.8:8000/v1", "local"))
    monkeypatch.setenv("CHEAP_KEY", "k" * 40)

    async def unreached(name, p, listed=None):  # no call to a public address from a test
        return False, "not probed"

    monkeypatch.setattr("tierwise.commands.doctor.probe", unreached)
    out = CliRunner().invoke(cli, ["doctor", "-c", str(path)]).output
    hits = [ln for ln in out.splitlines() if "provider cheap is `locality: local`" in ln]
    assert len(hits) == 1 and hits[0].startswith("! ") and "Fix: `locality: remote`" in hits[0], out


def test_doctor_says_it_loads_the_ner_model_before_the_seconds_it_takes(tmp_path, monkeypatch):
    # Before: with a privacy section and the NER extra, `doctor` printed nothing for ~30 s on a busy machine
    # (Presidio's import and spaCy's model), then `✓ config`; `serve` already said it.
    import importlib.util

    from click.testing import CliRunner

    from tests.harness import unavailable
    from tierwise.cli import main as cli

    if importlib.util.find_spec("spacy") is None:
        unavailable("the privacy-ner extra is not installed (scripts/test.sh installs it)")
    monkeypatch.setattr("tierwise.commands.doctor.built_routes", lambda cfg: None)  # the seconds themselves
    path = tmp_path / "tierwise.yaml"
    path.write_text(_config("http://127.0.0.1:9/v1", "local", privacy={"classes": {"pii": {}}}))
    out = CliRunner().invoke(cli, ["doctor", "-c", str(path)]).output
    lines = out.splitlines()
    [note] = [i for i, ln in enumerate(lines) if "loading the privacy detectors' NER model (en_core_web_sm" in ln]
    assert note < next(i for i, ln in enumerate(lines) if ln.startswith("✓ config")), out


@pytest.mark.parametrize("host, resolves_to, named", [
    ("llm.example.com", ["104.18.6.192", "2606:4700::6812:6c0"], "resolves to a public address (104.18.6.192)"),
    ("ollama.default.svc.cluster.local", ["10.96.0.12"], None),       # a cluster name
    ("gpu-box.lan", ["192.168.1.20", "2a02:1:2::5"], None),           # one private address: a LAN box
    ("nowhere.invalid", [], None),                                    # no answer: nothing said
])
def test_doctor_looks_a_name_up_and_names_one_that_is_public_only(host, resolves_to, named, monkeypatch):
    # Before: a hosted API behind a name of one's own (`https://llm.example.com` -> a CDN) written local passed
    # without a word: only genai-prices' API addresses and IP literals were compared.
    import socket

    from tierwise.commands.privacy_checks import resolved_public

    def getaddrinfo(name, port, *args, **kw):  # the resolver's answer for this name (no DNS in tests)
        if name != host or not resolves_to:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0))
                for a in resolves_to]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    cfg = parse_config(_config(f"https://{host}/v1", "local", **PRIVATE))
    assert remote_marked_local(cfg) == []  # serve does not look names up
    warnings = remote_marked_local(cfg, resolved_public)
    if named is None:
        assert warnings == [], warnings
    else:
        assert len(warnings) == 1 and named in warnings[0] and "reached over the internet" in warnings[0], warnings
