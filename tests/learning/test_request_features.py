"""`request_model.features` and `type_weight`: what the text model's kernel reads. Hashed tokens share little
between two prompts, so its posterior sd about a new request stays at the prior's; an embedding (cosines between
prompts) or the task-type label lets the sd shrink where labelled neighbours exist. The embedding is injected
(`TextAcceptance.embed`: text -> unit vector), so the kernel is checked against the primal formulas computed here."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from tierwise.learning.loop import LearningLoop, LoopSettings
from tierwise.learning.request_model import TextAcceptance
from tierwise.learning.request_model_settings import RequestModelSettings

DIM = 8
TOPICS = {"sums": 0, "wars": 1}


def word(seed: int, k: int) -> str:
    """A made-up word: prompts built from these share no word and (almost) no character 4-gram."""
    rng = np.random.default_rng(seed * 101 + k)
    return "".join(rng.choice(list("bcdfghjklmnpqrstvwxz"), 7))


def prompt(topic: str, i: int) -> str:
    return f"{topic} " + " ".join(word(i * 7 + TOPICS[topic] * 100_003, k) for k in range(5))


def embed(text: str) -> np.ndarray:
    """A prompt's topic direction plus a little noise of its own, unit length."""
    topic = text.split(" ", 1)[0]
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    v = np.zeros(DIM)
    v[TOPICS.get(topic, 2)] = 1.0
    v += 0.15 * rng.standard_normal(DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


def trained(features: str, type_weight: float = 0.0, alpha: float = 1.0, n: int = 40) -> TextAcceptance:
    m = TextAcceptance(RequestModelSettings(kind="text", bound="model", weight=1.0, min_rows=2, alpha=alpha,
                                            features=features, type_weight=type_weight), embed=embed)
    for i in range(n):  # "sums" prompts of type t, accepted 9 in 10; "wars" prompts of type u, 1 in 2
        topic, t = ("sums", "t") if i % 2 == 0 else ("wars", "u")
        y = float((i // 2) % 10 != 0) if topic == "sums" else float((i // 2) % 2)
        m.remember(f"r{i}", m.features(prompt(topic, i), t))
        m.record(f"r{i}", y)
    m.fit()
    return m


def primal(m: TextAcceptance, probe: tuple) -> tuple[float, float]:
    """The estimate and sd at a request by the primal Bayesian ridge: phi = [sqrt(wh) x_hashed, sqrt(we) e,
    sqrt(wt) onehot(type)], w = (PhiᵀPhi + alpha I)⁻¹ Phiᵀ (y − ȳ), sigma^2 the mean square of the leave-one-out
    residuals, sd^2 = sigma^2 phiᵀ (PhiᵀPhi + alpha I)⁻¹ phi."""
    s = m.settings
    wt = s.type_weight
    wh = (1.0 - wt) * {"hashed": 1.0, "embedding": 0.0, "both": 0.5}[s.features]
    we = (1.0 - wt) - wh
    rows = list(m.rows)
    types = sorted({r[4] for r in rows} | {probe[3]})
    b = s.n_buckets

    def phi(idx, cnt, e, t) -> np.ndarray:
        h = np.zeros(b)
        if len(idx):
            v = (1.0 + np.log(cnt.astype(np.float64))) * m.idf[idx].astype(np.float64)
            h[idx] = v / np.linalg.norm(v)
        onehot = np.array([float(t == u) for u in types])
        ee = np.zeros(DIM) if e is None else e.astype(np.float64)
        return np.concatenate([np.sqrt(wh) * h, np.sqrt(we) * ee, np.sqrt(wt) * onehot])

    x = np.stack([phi(r[0], r[1], r[3], r[4]) for r in rows])
    y = np.array([r[2] for r in rows])
    keep = np.flatnonzero(x.any(axis=0))  # the columns any row or the probe uses (the rest only add alpha I)
    p = phi(*probe)
    keep = np.union1d(keep, np.flatnonzero(p))
    x, p = x[:, keep], p[keep]
    a = np.linalg.inv(x.T @ x + s.alpha * np.eye(len(keep)))
    w = a @ x.T @ (y - y.mean())
    h = x @ a @ x.T
    loo = (y - y.mean() - h @ (y - y.mean())) / (1.0 - np.diag(h))
    sigma2 = float(np.mean(loo ** 2))
    return float(y.mean() + p @ w), float(np.sqrt(sigma2 * p @ a @ p))


def prior_sd(m: TextAcceptance) -> float:
    return float(np.sqrt(m.width[2] / m.settings.alpha))


def test_the_embeddings_sd_shrinks_among_judged_neighbours_and_the_hashed_one_does_not() -> None:
    emb, hashed = trained("embedding"), trained("hashed")
    probe = prompt("sums", 999)  # a new prompt: no word in common with any judged one, but on a judged topic
    f = emb.features(probe, "t")
    assert emb.sd(f) < 0.5 * prior_sd(emb)  # 20 judged neighbours: the model is sure of this request
    assert emb.estimate(f) > emb.intercept  # and it reads them: the "sums" prompts are accepted more often
    # the hashed tokens share nothing with the judged prompts: its sd stays at its prior
    assert hashed.sd(hashed.features(probe)) > 0.95 * prior_sd(hashed)
    # far from every judged prompt (another topic, only the noise in common): the embedding's sd stays wide
    far = emb.features("poems " + word(5, 5), "t")
    assert emb.sd(far) > 0.7 * prior_sd(emb) > 1.4 * emb.sd(f)


@pytest.mark.parametrize(("features", "type_weight"), [("embedding", 0.0), ("both", 0.0), ("both", 0.3),
                                                       ("hashed", 0.4), ("embedding", 0.5)])
def test_estimate_and_sd_are_the_primal_bayesian_ridge_over_the_kernels_parts(features, type_weight) -> None:
    m = trained(features, type_weight, alpha=0.7, n=30)
    for text, t in ((prompt("sums", 501), "t"), (prompt("wars", 502), "u"), ("poems " + word(1, 1), "v"),
                    (prompt("sums", 4), "t")):
        f = m.features(text, t)
        q, sd = primal(m, (f[0], f[1], f[2], f[3]))
        assert m.estimate(f) == pytest.approx(min(1.0, max(0.0, q)), abs=1e-5), (text, t)
        assert m.sd(f) == pytest.approx(sd, rel=1e-4), (text, t)


def test_the_type_label_shares_a_types_verdicts_with_its_new_requests() -> None:
    m = trained("hashed", type_weight=0.5)
    t_new = m.features(prompt("sums", 777), "t")  # 20 verdicts of its type, no word in common with them
    v_new = m.features(prompt("sums", 778), "v")  # a type never judged
    # the type's half of the kernel has 20 verdicts (its variance share 0.5 -> 0.5 alpha / (0.5 × 20 + alpha));
    # the hashed half shares nothing and keeps its 0.5 of the prior's variance
    assert 0.5 < (m.sd(t_new) / prior_sd(m)) ** 2 < 0.6 and m.sd(v_new) > 0.95 * prior_sd(m)
    assert m.estimate(t_new) > m.estimate(v_new) == pytest.approx(m.intercept, abs=0.02)


def test_defaults_are_unchanged_and_bad_values_are_config_errors() -> None:
    import yaml

    from tierwise.config import parse_config
    from tierwise.errors import ConfigError

    s = LoopSettings.model_validate({"request_model": {"kind": "text"}}).request_model
    assert (s.features, s.type_weight) == ("hashed", 0.0)
    assert len(TextAcceptance(s).features("hello there", "t")) == 2  # the hashed tokens only
    cfg = {"providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "locality": "local"}},
           "models": {"qwen": {"provider": "p", "model": "q"}},
           "routes": {"r": {"policy": "reflective", "local": "qwen", "frontier": "qwen",
                            "request_model": {"kind": "text", "features": "words"}}}}
    with pytest.raises(ConfigError) as e:
        parse_config(yaml.safe_dump(cfg))
    assert "routes.r.request_model.features: Input should be 'hashed', 'embedding' or 'both'" in e.value.message
    cfg["routes"]["r"]["request_model"] = {"kind": "text", "type_weight": 1.0}
    with pytest.raises(ConfigError) as e:
        parse_config(yaml.safe_dump(cfg))
    assert "routes.r.request_model.type_weight: Input should be less than 1" in e.value.message


def loop_with(features: str, type_weight: float) -> LearningLoop:
    loop = LearningLoop("r", LoopSettings.model_validate({
        "schedule": {"first_uses": 1000, "shadow_stop_after": 10_000},
        "request_model": {"kind": "text", "bound": "model", "weight": 1.0, "min_rows": 10, "refit_every": 5,
                          "features": features, "type_weight": type_weight}}))
    loop.request_model.embed = embed
    return loop


def test_save_and_restore_keep_the_embeddings_and_types_and_skip_what_does_not_fit(tmp_path) -> None:
    a = loop_with("both", 0.3)
    for i in range(23):
        topic, t = ("sums", "t") if i % 3 else ("wars", "u")
        assert a.plan(t, f"r{i}", text=prompt(topic, i)).judge
        a.verdict(t, float(i % 4 != 0), request_id=f"r{i}")
    path = tmp_path / "state.json"
    a.save(path)
    saved = json.loads(path.read_text())
    assert len(saved["request_model"]["dense"]) == 23 and "sums" not in path.read_text()  # vectors, no text
    b = loop_with("both", 0.3)
    assert b.restore(path)
    ma, mb = a.request_model, b.request_model
    for text, t in ((prompt("sums", 400), "t"), (prompt("wars", 401), "u")):
        fa, fb = ma.features(text, t), mb.features(text, t)
        assert mb.estimate(fb) == pytest.approx(ma.estimate(fa)) and mb.sd(fb) == pytest.approx(ma.sd(fa))
    # a malformed row is skipped; a state saved under other features gives nothing to refit from
    data = a.dump()
    data["request_model"]["dense"][0][0] = "not base64!"
    data["request_model"]["dense"][1] = ["", "t"]  # no embedding where `both` needs one
    c = loop_with("both", 0.3)
    c.load(data)
    assert len(c.request_model.rows) == 21
    for other in (("embedding", 0.3), ("both", 0.0), ("hashed", 0.0)):
        d = loop_with(*other)
        d.load(a.dump())
        assert not d.request_model.rows and not d.request_model.ready, other


def test_embedding_features_without_the_extra_fail_at_start_with_the_install_line(monkeypatch) -> None:
    from tierwise.routers import features as rf
    from tierwise.routers.features import MissingExtra

    monkeypatch.setattr(rf, "embedding_available", lambda: False)
    with pytest.raises(MissingExtra) as e:
        loop_with("embedding", 0.0)
    assert "request_model.features: embedding features need the optional `embeddings` extra" in str(e.value)
    assert loop_with("hashed", 0.3).request_model is not None  # hashed tokens and the label need no extra
