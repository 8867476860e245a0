"""The settings of a reflective route's text model of each request (`request_model:`), without numpy.

Every gateway loads the policies, and so this; the model itself (learning/request_model.py: numpy, the hashed
features, the ridge solve) is imported only when a route asks for it (`kind: text`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from tierwise.learning.request_model import TextAcceptance


class RequestModelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["none", "text"] = Field("none", description=(
        "none: a request's acceptance is its type's (and `within`'s); text: also a text model trained on the "
        "loop's own verdicts"))
    weight: float = Field(0.5, ge=0.0, le=1.0, description="share of the text model in a request's acceptance")
    combine: Literal["blend", "within"] = Field("blend", description=(
        "blend: (1 - weight) x the loop's own estimate (type mean moved by the `within` slope) + weight x the "
        "text model's; within: the `within` slope moves the blend of the type's mean and the text model's, so "
        "at weight 1.0 the text model sets the level and the prompt signal still moves it inside the type"))
    bound: Literal["none", "count", "model"] = Field("none", description=(
        "none: a request takes the tier its point estimate calls for; count: a request of a frontier type goes "
        "local only when the lower credible bound of a Beta centred on its estimate with the type's own evidence "
        "clears the target (a local type's request goes to the frontier when its estimate falls below it); "
        "model: the same with the text model's own credible interval (its posterior sd as a Bayesian ridge "
        "regression, noise from its leave-one-out residuals)"))
    cap: Literal["none", "credible", "half"] = Field("none", description=(
        "none: the text model's estimate is used as it is; credible: it never exceeds the upper edge of its task "
        "type's own two-sided credible interval (`boundary.credible`), so a type whose own verdicts put it "
        "credibly below the target keeps its requests on the frontier however the model, pooled over every type, "
        "rates them, while a type with little evidence (a wide interval) is left to the model; half: on such a "
        "type only the requests the model rates above its own running mean over the type's requests keep its "
        "estimate (at most about half of them go local), the rest are capped"))
    cap_credible: float | None = Field(None, ge=0.5, lt=1.0, description=(
        "with `cap: credible`: the two-sided credible mass whose upper edge caps the estimate (default: "
        "`boundary.credible`); higher caps only types with more evidence below the target"))
    type_offset: float | None = Field(None, gt=0.0, le=1e6, description=(
        "unset: the text model's estimate is used as it is; a number k: each request's estimate moves by its task "
        "type's mean residual (a verdict minus the model's estimate of its request when the verdict came, before "
        "the row trains the model), shrunk toward 0 as if k more verdicts had none: the model, pooled over every "
        "type, keeps ordering a type's requests while the type's own verdicts correct its level (a type with few "
        "rows is otherwise rated near the pooled mean)"))
    judge_served: int | None = Field(None, ge=1, le=1_000_000, description=(
        "unset: whether a request is judged is its type's decision alone; a number M: a request of a frontier-tier "
        "type that the text model serves locally is judged if it is among the first M such requests of its type, "
        "then on the `judge_served_rate` hash sample, so a type the model spends quality on gets verdicts on the "
        "answers users actually get (into the same posterior and training rows)"))
    judge_served_rate: float | None = Field(None, ge=0.0, le=1.0, description=(
        "with `judge_served`: the share of such requests judged after the first M (default: `schedule.sample_rate`)"))
    features: Literal["hashed", "embedding", "both"] = Field("hashed", description=(
        "what the text model reads: hashed words, word pairs and character 4-grams (hashed); the shared sentence "
        "embedding all-MiniLM-L6-v2 of the prompt (embedding: the `embeddings` extra, computed per request); or "
        "both, each half of the kernel"))
    type_weight: float = Field(0.0, ge=0.0, lt=1.0, description=(
        "share of the kernel given to the request's task-type label (requests of one type share it), the rest to "
        "`features`: the model's uncertainty about a request then shrinks with its type's verdicts"))
    after_move_back: Literal["off", "below-target", "checked"] = Field("off", description=(
        "off: the text model does not serve a type the boundary has moved back to the frontier (until it moves "
        "local again), so a drifted type is not served locally on verdicts pooled over other types; below-target: "
        "it still serves a type whose moves back were all by the below-target rule (never by the change-point "
        "test), as it serves a frontier type that never moved: a good type sent back by an unlucky run of verdicts, "
        "which is never judged enough to return, then keeps its requests local where the model rates them so; "
        "checked: as below-target while the type's verdicts since its move back do not favour a drop (the one the "
        "change-point test looks for, from the quality target) by `check_odds` to 1, and each request the model "
        "serves locally is judged until they favour the target or the drop by those odds (a sequential test): a "
        "type sent back by an unlucky run is served again, a drifted one is taken off the model after a few "
        "verdicts"))
    check_odds: float = Field(10.0, gt=1.0, le=1e6, description=(
        "with `after_move_back: checked`: the odds the verdicts since a move back must give the drop (the model "
        "is then off the type) or the target (its served requests are then no longer all judged)"))
    check_max: int = Field(50, ge=1, le=100_000, description=(
        "with `after_move_back: checked`: the most verdicts since a move back (with `check_recheck`, since the check "
        "last stood decided for the target) for which a request the model serves locally is judged to decide it"))
    check_recheck: bool = Field(True, description=(
        "with `after_move_back: checked`: once the check favours the target, the requests the model serves are "
        "audited at `schedule.audit_rate` and the check's statistic stays at that decision (floored), so a "
        "rejection re-opens it and a drift that starts later takes the model off the type (while re-opened, its "
        "served requests are judged in proportion to how far the statistic has gone toward the drop); false: "
        "round 29's check (the sum since the move back, only the type's own schedule judging once decided)"))
    check_margin: float | None = Field(None, ge=0.01, le=0.5, description=(
        "with `after_move_back: checked`: unset, the check weighs the target against the drop the change-point test "
        "looks for (acceptance 2t - 1, round 29's: a type at 0.70 against a 0.80 target is let back about half the "
        "time); a margin d, it weighs the target + d against the target - d on the verdicts since the move back "
        "(mostly on the answers the model served), so the model is let back only onto a type whose served answers "
        "are accepted above the target; a check still undecided after `check_max` verdicts serves the type while its "
        "statistic favours the target (the verdicts since the move back above the target's side) and not otherwise"))
    frontier_label: float | None = Field(None, gt=0.0, le=10.0, description=(
        "unset: no type label beyond `type_weight`'s; a number w: the request's task-type label enters the kernel "
        "with weight w (added to the features' kernel, 1 between two requests of one type) only for task types the "
        "boundary has never moved: frontier types that never earned a move local, whose requests the model, pooled "
        "over every type, would otherwise rate near the pooled level whatever their own verdicts say; the types "
        "that have moved (local ones, and those moved back, which the model does not serve) are read by their "
        "words alone, as without the option"))
    min_rows: int = Field(100, ge=2, le=1_000_000, description="verdicts the text model needs before it is used")
    max_rows: int = Field(1000, ge=2, le=5_000, description=(
        "latest verdicts kept to train on (older ones dropped); at most 5,000: each refit solves a dense "
        "max_rows x max_rows system (200 MB and seconds of CPU at 5,000)"))
    refit_every: int = Field(25, ge=1, le=100_000, description="new verdicts between two refits")
    alpha: float = Field(3.0, gt=0.0, le=1e6, description="ridge penalty")
    n_buckets: int = Field(1 << 16, ge=1 << 10, le=1 << 20, description="hashed feature buckets (a power of two)")
    max_chars: int = Field(4000, ge=100, le=1_000_000, description="prompt characters the features read")
    max_key_share: float = Field(0.25, gt=0.0, le=1.0, description=(
        "most of the rows one gateway key's requests may hold (at least min_rows): one client cannot retrain "
        "the model for everyone"))

    @field_validator("after_move_back", mode="before")
    @classmethod
    def _yaml_off(cls, v: object) -> object:
        # YAML reads an unquoted `off` as false: `request_model: {after_move_back: off}` (the documented way back to
        # rounds 14-28's text model) must not fail the config's load
        return "off" if v is False else v

    @field_validator("check_odds", "check_max", "check_margin", mode="before")
    @classmethod
    def _no_bool(cls, v: object) -> object:
        if isinstance(v, bool):  # (`check_max: true` would be 1 verdict)
            raise ValueError("a number, not true/false")
        return v

    @field_validator("n_buckets")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError("n_buckets must be a power of two")
        return v


def make_request_model(settings: RequestModelSettings) -> TextAcceptance | None:
    if settings.kind != "text":
        return None
    from tierwise.learning.request_model import TextAcceptance

    if settings.features != "hashed":
        from tierwise.routers.features import NO_EMBEDDINGS, MissingExtra, embedding_available

        if not embedding_available():  # at the route's start, not on its first request
            raise MissingExtra("request_model.features: " + NO_EMBEDDINGS.replace("embedding routers need",
                                                                                  "embedding features need"))

    return TextAcceptance(settings)
