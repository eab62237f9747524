"""The replenishment model: when a customer will next buy a consumable, and how likely they are to buy at all.

Two parts, each with its source:

1. Renewal timing (per customer × product). Days per unit between purchases are log-normal. The product's learned
   distribution gives the centre ``mu_p`` = log of the product's median gap, the spread within one customer's
   re-buys ``s_w²`` and the spread between customers' own means ``s_b²`` (pooled variances of log gaps,
   ``learn_log_spread``). A customer with ``n`` own gaps whose median is ``g`` gets the normal-normal
   (empirical Bayes) estimate ``mu = (k·mu_p + n·log g) / (k + n)`` with ``k = s_w² / s_b²`` — more own gaps,
   more weight (Gelman et al., *Bayesian Data Analysis*, 3rd ed., §5.5) — and the predictive variance
   ``s² = s_w² + s_w² / (k + n)``. A first-time buyer (``n = 0``) gets the product's own distribution; before a
   product has learned one, the merchant's days of supply is the centre and ``DEFAULT_LOG_VAR`` the spread.
   Quantity scales the cycle: ``mu + log q``.
2. Still active (per customer × product): the MBG/NBD model (Batislam, Denizel & Filiztekin 2007, "Empirical
   validation and comparison of models for customer base analysis", IJRM 24(3); the BG/NBD of Fader, Hardie &
   Lee 2005, "Counting Your Customers the Easy Way", Marketing Science 24(2), with a drop-out possible right after
   the first purchase, so a one-time buyer's probability also decays). With ``x`` repeat purchases, the last at
   ``t_x`` and ``T`` days since the first: ``P(alive) = 1 / (1 + a/(b+x) · ((alpha+T)/(alpha+t_x))^(r+x))``.
   ``r, alpha, a, b`` are fitted per store by maximum likelihood (``fit_mbgnbd``, the likelihood of Batislam et al.
   eq. 3; a Nelder–Mead search on the log parameters over the pairs grouped by (x, t_x, T) in days).

The predicted run-out (the next purchase, shown on the customer page and what the evaluation's error is measured
on) is the median of the renewal model's next gap G given what is known now: no purchase since the last one, ``a``
days ago, and — the customers the reminder is for — a return within ``H`` days (``RETURN_DAYS``, a year). With S
the log-normal survival, ``P(G > g | a < G ≤ a + H) = ½`` gives ``S(g) = (S(a) + S(a + H)) / 2``, so
``g = exp(mu + s · z)`` with ``1 − Φ(z) = (S(a) + S(a + H)) / 2`` — the residual life of an interval already ``a``
days old, ``P(G > a + x | G > a) = S(a + x) / S(a)`` (Cox, *Renewal Theory*, 1962), restricted to the horizon; the
conditional median, not the mode, is what minimises the mean absolute error. A customer with regular own gaps has a
small spread, so the median stays near their own cycle even when slightly overdue; a customer with wide, skewed
gaps who is long overdue gets a later date, the decreasing hazard of a wide log-normal's tail. The inverse of Φ in
SQL is Hastings' rational approximation (Abramowitz & Stegun 26.2.23, error under 4.5e-4 in z;
plugin.flows.replenishment_plan._inverse_survival).

The reminder: the window of ``2h`` days (``h`` = lead days, the merchant's setting) with the highest probability
of the next purchase is centred, for a log-normal, where ``sqrt(start · end)`` is the mode ``exp(mu − s²)``
(equal density at both ends), so its centre is ``sqrt(h² + mode²)`` days after the last purchase — the reminder's
target, the date its email names. The reminder goes at the window's start, or now when that has passed (one catch-up
reminder for an overdue customer: given no purchase yet, a wide log-normal's density is highest right away). For a
regular customer the window's centre and the predicted run-out nearly coincide; for a wide one the window is where
a reorder is likeliest, the run-out where half the returners have reordered. Its probability is
``P(alive) · P(next gap in the window | no purchase yet)`` — the renewal's own hazard, not the memoryless MBG/NBD
one; below the merchant's floor no reminder goes, so customers who have left stop getting them. The normal tail in
SQL is Börjesson & Sundberg's approximation (plugin.flows.replenishment_plan._survival), relative error under 0.3 %.

Why our own code: the maintained libraries that fit these models (pymc-marketing: PyMC and PyTensor; btyd: a
beta) pull a probabilistic-programming stack into a plugin that needs four numbers per store, and ``lifetimes`` is
unmaintained since 2020. The likelihood is a dozen lines of NumPy; ``bench/replenishment_eval.py`` checks the fit
against ``lifetimes``' ModifiedBetaGeoFitter on the CDNOW history it ships.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# Spread of log(days per unit) assumed before a product has learned its own (a factor of e^0.5 ≈ 1.65 either way).
DEFAULT_LOG_VAR = 0.25
# Variances are never taken below this (a product whose customers all re-buy on the same day of the month).
MIN_LOG_VAR = 0.01
# Pooled within-customer degrees of freedom needed before a product's spread is learned.
MIN_SPREAD_DF = 5
# A store's MBG/NBD is fitted once it has this many customer × product pairs, at least a tenth of them repeaters
# (below that its four parameters are poorly identified; until then every customer counts as active).
MIN_FIT_PAIRS = 500


@dataclass(frozen=True)
class MBGNBD:
    """Fitted MBG/NBD parameters of a store (time in days)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    pairs: int


def _log_rising(base: float, counts: np.ndarray) -> np.ndarray:
    """Return log(Γ(base + x) / Γ(base)) for integer counts x ≥ 0 (a cumulative sum, no log-gamma needed)."""
    top = int(counts.max()) if counts.size else 0
    table = np.concatenate(([0.0], np.cumsum(np.log(base + np.arange(top)))))
    return table[counts]


def mbgnbd_log_likelihood(params: Sequence[float], x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray,
                          weight: np.ndarray) -> float:
    """Return the weighted MBG/NBD log-likelihood (Batislam et al. 2007, eq. 3) of (x, t_x, T) rows."""
    r, alpha, a, b = params
    a1 = _log_rising(r, x) + r * math.log(alpha)
    # log B(a, b + x + 1) / B(a, b) = log Γ(b+x+1)/Γ(b) − log Γ(a+b+x+1)/Γ(a+b)
    a2 = _log_rising(b, x + 1) - _log_rising(a + b, x + 1)
    a3 = -(r + x) * np.log(alpha + big_t)
    a4 = math.log(a) - np.log(b + x) - (r + x) * np.log(alpha + t_x)
    return float(np.sum(weight * (a1 + a2 + np.logaddexp(a3, a4))))


def nelder_mead(f: Callable[[np.ndarray], float], start: np.ndarray, step: float = 0.5, tol: float = 1e-9,
                max_iter: int = 2000) -> np.ndarray:
    """Minimise ``f`` from ``start`` by the simplex method (Nelder & Mead 1965, standard coefficients)."""
    n = start.size
    simplex = np.vstack([start] + [start + step * np.eye(n)[i] for i in range(n)])
    values = np.array([f(p) for p in simplex])
    for _ in range(max_iter):
        order = np.argsort(values)
        simplex, values = simplex[order], values[order]
        if abs(values[-1] - values[0]) <= tol * (abs(values[0]) + tol):
            break
        centroid = simplex[:-1].mean(axis=0)
        reflected = centroid + (centroid - simplex[-1])
        fr = f(reflected)
        if fr < values[0]:
            expanded = centroid + 2.0 * (centroid - simplex[-1])
            fe = f(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
        else:
            inside = fr >= values[-1]
            contracted = centroid + (0.5 * (simplex[-1] - centroid) if inside else 0.5 * (reflected - centroid))
            fc = f(contracted)
            if fc < min(fr, values[-1]):
                simplex[-1], values[-1] = contracted, fc
            else:
                simplex[1:] = simplex[0] + 0.5 * (simplex[1:] - simplex[0])
                values[1:] = [f(p) for p in simplex[1:]]
    return simplex[int(np.argmin(values))]


def fit_mbgnbd(rows: Sequence[tuple[int, float, float, int]]) -> MBGNBD | None:
    """Fit r, alpha, a, b by maximum likelihood to (x, t_x, T, how many pairs) rows; None with too little data."""
    if not rows:
        return None
    data = np.array(rows, dtype=float)
    x, t_x, big_t, weight = data[:, 0].astype(int), data[:, 1], data[:, 2], data[:, 3]
    pairs = int(weight.sum())
    if pairs < MIN_FIT_PAIRS or weight[x > 0].sum() < pairs / 10:
        return None
    big_t = np.maximum(big_t, t_x)

    def loss(log_params: np.ndarray) -> float:
        params = np.exp(np.clip(log_params, -12.0, 12.0))
        return -mbgnbd_log_likelihood(params, x, t_x, big_t, weight) / pairs

    # Start at one purchase per average observation span (alpha in days), a = b = 1.
    start = np.log(np.array([1.0, max(float(np.average(big_t, weights=weight)), 1.0), 1.0, 1.0]))
    best = nelder_mead(loss, start)
    best = nelder_mead(loss, best, step=0.1)  # a restart from the optimum guards against a collapsed simplex
    r, alpha, a, b = (float(v) for v in np.exp(np.clip(best, -12.0, 12.0)))
    return MBGNBD(r, alpha, a, b, -loss(best) * pairs, pairs)


def p_alive(fit: MBGNBD, x: float, t_x: float, big_t: float) -> float:
    """Return the MBG/NBD probability that a pair with x repeats, the last at t_x, is still active at T."""
    return 1.0 / (1.0 + fit.a / (fit.b + x) * ((fit.alpha + big_t) / (fit.alpha + t_x)) ** (fit.r + x))
