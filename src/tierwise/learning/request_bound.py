"""A lower credible bound on one request's acceptance (`request_model.bound`).

With `within` or `request_model`, each request takes the tier its own acceptance estimate m calls for; without a
bound (`bound: none`) that is the point estimate against the quality target, so a request of a type whose own
lower credible bound is under the target can go local on the text model's say alone. With a bound the request
follows the boundary's own rule, applied to the request:

- a request of a **frontier** type goes local only when the lower credible bound of its acceptance clears the
  target (the boundary's move-local rule), and a request of a **local** type goes to the frontier when its
  estimate falls below the target (the boundary's move-back rule): the same hysteresis;
- `count`: the bound of a Beta posterior centred on m with the type's own evidence, a = prior_accept + m·n,
  b = prior_reject + (1 − m)·n, n the type's (discounted) verdicts above the prior: the text model chooses which
  requests, the type's evidence says how sure the loop may be about any of them;
- `model`: the text model's own credible interval, m − z·sd, sd the posterior standard deviation of its estimate
  (`TextAcceptance.sd`: the ridge regression read as a Bayesian linear model, its noise the mean square of the
  fit's leave-one-out residuals) times the model's weight in the blend, z the normal quantile of the route's
  `boundary.credible`. A request without the text model's estimate (the model not fitted yet, a type moved back
  to the frontier) takes the `count` bound.
"""

from __future__ import annotations

from statistics import NormalDist

from tierwise.learning.boundary import BoundarySettings, TaskState, Tier, beta_lower


def request_tier(st: TaskState, m: float, bs: BoundarySettings, sd: float | None = None) -> Tier:
    """The tier of a request with acceptance estimate m (and, for `model`, its standard deviation sd) by the
    boundary's rule applied to it (above)."""
    target = bs.quality_target
    if st.tier == "local":
        return "local" if m >= target else "frontier"
    m = min(1.0, max(0.0, m))
    if sd is not None:
        lower = m - NormalDist().inv_cdf(1.0 - (1.0 - bs.credible) / 2.0) * sd
    else:
        n = max(0.0, st.a - bs.prior_accept + st.b - bs.prior_reject)
        lower = beta_lower(bs.prior_accept + m * n, bs.prior_reject + (1.0 - m) * n, (1.0 - bs.credible) / 2.0)
    return "local" if lower >= target else "frontier"


__all__ = ["request_tier"]
