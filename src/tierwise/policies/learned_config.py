"""The sections of a `learned` route's config that switch on its live checks: shift detection and safe demotion,
online validation, adaptation on judged traffic (docs/routers.md). The route's own keys are `LearnedConfig`
(policies/learned.py), which imports these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

REFIT_WINDOW, REFIT_MIN = 500, 100  # re-fit defaults: scores kept, scores seen before the first re-fit
# the route's default `placement`: `window-tokens` passed round 17's registered rule on P12 (bench/RESULTS.md, "Transfer
# round 17"); a router without static token vectors is scored as it is
PLACEMENT: Literal["none", "window", "window-tokens"] = "window-tokens"
# whether a route with online validation also places its scores by judged verdicts (`placement_judged`): round 18 passed
# its registered rule on P13 (bench/RESULTS.md, "Transfer round 18"; +0.001 at a 10% judged share: a pass, not a gain)
PLACEMENT_JUDGED = True
# the weight of the training-bank term of a `window-tokens` placement (`placement_bank`, routers/bank.py): 0 (off)
# unless round 23's registered rule passes on P16 (bench/RESULTS.md, "Transfer round 23")
PLACEMENT_BANK = 0.0
PROMOTE_MARGIN = 0.02  # the online verdict's hysteresis (evaluation/online.PROMOTE_MARGIN, tested equal)
REFIT_KEY_SHARE = 0.25  # the share of the re-fit window one gateway key's scores may hold


class ShiftConfig(BaseModel):
    """Shift detection and safe demotion (docs/routers.md#shift-detection-and-safe-demotion)."""

    model_config = ConfigDict(extra="forbid")
    space: Literal["lsa", "embedding"] = Field(
        "lsa", description="where distances are measured: the profile's LSA of the words (cheap) or the "
                           "router's sentence embedding (embedding routers only)")
    window: int = Field(200, ge=10, le=100_000, description="recent requests the verdict is taken over")
    min_requests: int = Field(30, ge=1, description="requests seen before any verdict")
    far_quantile: float = Field(0.95, gt=0, lt=1, description="a request is far beyond this quantile of the "
                                                               "training prompts' neighbour distances")
    demote_above: float = Field(0.25, gt=0, lt=1, description="demote when this share of the window is far")
    promote_below: float = Field(0.15, gt=0, lt=1, description="re-promote when the share falls below this")
    demote: bool = Field(True, description="false: only measure and record, never demote")
    fallback: str | None = Field(None, description="target while demoted (default: the `strong` target)")
    # The re-fit keys may also stand at the route level (where a route without `shift` sets them); here, only
    # in-distribution scores (while the route is not demoted for shift) move the threshold.
    refit_threshold: bool | None = Field(
        None, description="move the threshold to the target share's quantile of recent in-distribution scores "
                          "(default: on when the route has a target_share; same as the route-level key)")
    refit_window: int = Field(REFIT_WINDOW, ge=10, le=100_000, description="recent scores the threshold is re-fitted on")
    refit_min: int = Field(REFIT_MIN, ge=10, description="scores seen before the first re-fit")

    @model_validator(mode="after")
    def _consistent(self) -> ShiftConfig:
        if self.promote_below > self.demote_above:
            raise ValueError("promote_below must not exceed demote_above (the gap is the hysteresis)")
        if self.min_requests > self.window:
            raise ValueError("min_requests must not exceed window")
        return self  # the re-fit keys are checked with the route level's (LearnedConfig.refit_settings)


class ValidationConfig(BaseModel):
    """Online validation (docs/routers.md#online-validation): the judge grades both answers of each shadow pair;
    the route's APGR on the recent judged pairs, with an interval, is recorded and may demote the route."""

    model_config = ConfigDict(extra="forbid")
    judge: str | None = Field(None, description="model or route that grades both answers (default: the `strong` target)")
    rubric: str | None = Field(None, description="the judge's 3-point rubric (good / acceptable / poor)")
    window: int = Field(500, ge=10, le=100_000, description="recent judged pairs the estimate is taken over")
    min_pairs: int = Field(50, ge=5, description="judged pairs before any verdict")
    rounds: int = Field(300, ge=50, le=5_000, description="bootstrap resamples of the interval")
    level: float = Field(0.95, gt=0.5, lt=1.0, description="confidence level of the interval")
    demote: bool = Field(True, description="demote while the estimate is not better than random with confidence")
    promote_margin: float = Field(PROMOTE_MARGIN, ge=0, lt=0.5, description="once demoted, re-promote only when the "
                                  "interval's lower end clears random (0.5) by this much (the hysteresis)")

    @model_validator(mode="after")
    def _consistent(self) -> ValidationConfig:
        if self.min_pairs > self.window:
            raise ValueError("min_pairs must not exceed window")
        return self


class AdaptConfig(BaseModel):
    """Adaptation on the route's judged traffic (docs/routers.md#adaptation-on-your-judged-traffic): the router's
    score blended with a ridge fitted on the judged shadow pairs' prompts, refitted off the request path."""

    model_config = ConfigDict(extra="forbid")
    min_pairs: int = Field(100, ge=10, description="judged pairs (with their prompts) before adapted scores route")
    prior_weight: float = Field(300.0, ge=0, description="the router's weight, in pairs: the judged pairs weigh "
                                                         "n / (n + prior_weight)")
    window: int = Field(500, ge=10, le=2_000, description="newest judged pairs fitted on (their prompts are kept "
                                                          "in memory and in the route's state file)")
    every: int = Field(10, ge=1, le=10_000, description="new judged pairs between two refits")

    @model_validator(mode="after")
    def _consistent(self) -> AdaptConfig:
        if self.min_pairs > self.window:
            raise ValueError("min_pairs must not exceed window")
        return self
