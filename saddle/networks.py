r"""The bridge from the two-layer linear network to the spectral saddle.

A ``linear_network`` config (f = 1/2 ||W_2 W_1 - S||_F^2 - 1/2 ||S||_F^2 at the origin,
D = h (m + n)) has, at its starting saddle, a Hessian known in closed form: -s_i and +s_i
with multiplicity h each per teacher mode, and exactly 0 on the other D - 2hk directions
(:mod:`saddle.landscapes.linear_network`). :func:`spectral_equivalent` writes down the
*local spectral model* of that saddle, a ``spectral`` config; :func:`predict` collects what
the lab can say about the equivalent (the theory's escape-time results, the closed-form
gradient-flow plateau, and the measured escape time of the equivalent itself).

The mapping (every choice, and why):

- **Shape.** m' = h (the width), n' = m + n, so m' n' = D exactly. The stacked matrix
  [W_1, W_2^T] (h x (n + m)) is the natural one: the network's negative-curvature directions
  of mode i are (x v_i^T, u_i x^T)/sqrt2 for unit x in R^h, i.e. the rank-one matrices
  x [v_i; u_i]^T / sqrt2 of the stacked matrix, exactly what p q^T is in a spectral saddle.
- **Escape block.** gamma = s_1 = teacher_scale and escape_rank = 1. The h directions of
  mode 1 (one per hidden unit) all have curvature -s_1, and under gradient flow (any
  rotation-invariant dynamics) the vector x of the h units' coordinates only grows
  radially: its length is one escape coordinate of curvature -s_1. Weaker modes (s_i < s_1)
  escape later and do not decide the loss criterion; the spectral saddle has one gamma.
- **Bulk.** Every other direction is flat (exactly 0), and the +s_i directions are stable.
  The spectral bulk must be positive (``bulk_scale`` > 0), so the bulk is ``constant`` with
  bulk_scale = :data:`FLAT_BULK` x s_1 (1e-6 s_1: a displacement decays by a factor
  exp(-1e-6 s_1 lr k), nothing over any budget here). The h k stable directions +s_i are
  folded into this flat bulk (a fraction k/(m + n) of D; they only shrink).
- **Quartic cap.** 0: the local (quadratic) model. Along the escape line the network's loss
  is -s a^2/2 + a^4/8 (a quartic cap of 1/2); the cap is left out and the loss criterion
  is mapped instead (next item), which makes the escape thresholds equal.
- **Escape criterion.** Loss. With mode strength c = a^2/2, the network's loss along the
  line is c^2/2 - s c, so f <= -Delta at c* = s - sqrt(s^2 - 2 Delta); the equivalent
  (quadratic, f = -s a^2/2 = -s c) crosses the same a* at loss_drop' = s c*. A projection
  criterion (radius R on the first unit) maps to radius R; the alignment criterion
  (c / s >= A) maps to the loss criterion at c* = A s, loss_drop' = A s^2.
- **Basis.** ``structured`` (randomized DCT, coherence <= sqrt2): the network's escape
  direction x [v; u]^T/sqrt2 is dense in the stacked matrix (x is a random combination of
  the units, u and v Haar); the structured basis is dense too at O(D log D) a step, where a
  Haar basis of side h would cost O(D h) and h^2 memory.
- **Initialization.** A random network start puts N(0, eps^2) on every entry (eps =
  init_scale): the h escape coordinates x_j = (a_j + b_j)/sqrt2 are iid N(0, eps^2), so
  |x|^2 ~ eps^2 chi^2_h. The equivalent starts at init = random with the same init_scale
  (the bulk is displaced alike) and init_escape a0 = eps sqrt(h - 1) (plus the network's
  own init_escape a_net, in quadrature): then E a^2 = a0^2 + eps^2 = a_net^2 + h eps^2 =
  E |x|^2. The mode strength at the start is therefore c0 = (a_net^2 + h eps^2)/2.
- **Noise.** Minibatch noise is state-dependent and has no spectral analogue. It maps to
  ``isotropic`` noise with the per-entry standard deviation of the minibatch gradient's
  noise at the random start (:func:`minibatch_entry_std`: sigma^2 = 2 (n + 1) eps^2
  ||S||_F^2 / (B (m + n)), the expectation over the start and the batch, P = W_2 W_1 of
  order eps^2 neglected), or to no noise (``noise="none"``). The network's noise grows as W
  leaves the origin; the constant sigma does not: the equivalent's noise is the start's.
- **Optimizer.** The same optimizer with the same hyperparameters and learning rate. One
  difference is structural: Muon orthogonalizes the network per leaf (W_1 and W_2, each
  with its own Keller scale) and the equivalent on the stacked h x (m + n) matrix; a
  rank-one gradient's per-leaf polar step moves the escape coordinate sqrt2 times as far.
"""

from __future__ import annotations

import math

from .config import Config
from .landscapes.linear_network import LinearNetworkSpec
from .landscapes.spectral import SpectralSpec
from .landscapes.teacher_student import TeacherStudentSpec, plateau_curvature
from .noise.gaussian import Isotropic, NoNoise
from .optimizers._baselines import SGDSpec
from .registry import LANDSCAPES, NOISES, OPTIMIZERS

__all__ = ["spectral_equivalent", "predict", "gd_plateau", "minibatch_entry_std",
           "initial_overlap", "equivalent_loss_drop", "theory_values", "projection_twin",
           "measure", "equivalent_points", "comparison_table", "exponents", "carry_over",
           "FLAT_BULK", "CARRIED"]

NETWORKS = (LinearNetworkSpec.name, TeacherStudentSpec.name)  # the landscapes the bridge maps
FLAT_BULK = 1e-6  # the equivalent's bulk eigenvalue, relative to s_1 (spectral needs > 0)

# Fields the equivalent keeps unchanged: the optimizer's, and the run's.
CARRIED = ("seed", "seeds", "dtype", "rng", "noise_streams", "backend", "max_steps",
           "divergence_factor", "max_loss")


def _check(config: Config, allowed=(LinearNetworkSpec.name,)) -> None:
    if config.landscape not in allowed:
        raise ValueError(f"landscape: got {config.landscape!r}; allowed: "
                         f"{', '.join(map(repr, allowed))} (the bridge maps a network config)")


def initial_overlap(config: Config) -> float:
    """c0 = (init_escape^2 + h init_scale^2)/2: the expected mode strength E|x|^2/2 of the
    first teacher mode at the start (0 at an exact saddle start with no init_escape)."""
    _check(config)
    eps = config.init_scale or 0.0
    return 0.5 * ((config.init_escape or 0.0) ** 2 + config.width * eps * eps)


def minibatch_entry_std(config: Config) -> float:
    """Per-entry std of the minibatch gradient noise at the random start (expected; see
    :meth:`LinearNetworkSpec.minibatch_entry_std`, where it is derived)."""
    _check(config)
    return LANDSCAPES[config.landscape].minibatch_entry_std(config)


def equivalent_loss_drop(config: Config) -> float:
    """loss_drop' = s c* with c* = s - sqrt(s^2 - 2 Delta): the quadratic equivalent's drop
    at the escape coordinate where the network's loss along its escape line reaches -Delta."""
    s, delta = config.teacher_scale, config.loss_drop
    return s * (s - math.sqrt(max(s * s - 2 * delta, 0.0)))


def _noise_fields(config: Config, noise: str | None) -> dict:
    """The equivalent's noise: state-dependent noise maps to isotropic at the start's scale
    (or to ``noise`` when given: the noise-free name, or the isotropic one)."""
    spec = NOISES[config.noise]
    if noise is None:
        noise = Isotropic.name if spec.state_dependent else config.noise
    if noise == NoNoise.name:
        return dict(noise=noise)
    if noise != Isotropic.name:
        raise ValueError(f"noise: got {noise!r}; allowed: {Isotropic.name!r}, "
                         f"{NoNoise.name!r}")
    if spec.state_dependent:
        sigma = minibatch_entry_std(config)
    elif config.sigma is not None:
        sigma = config.sigma  # already a per-entry Gaussian scale
    else:
        raise ValueError(f"noise: {config.noise!r} has no isotropic equivalent here")
    return dict(noise=noise, sigma=sigma) if sigma > 0 else dict(noise=NoNoise.name)


def spectral_equivalent(config: Config, noise: str | None = None) -> Config:
    """The local spectral model of a ``linear_network`` config's starting saddle (see the
    module docstring for every choice): same D, gamma = s_1, escape_rank 1, flat bulk,
    same optimizer, learning rate, init scale, seeds and budget.

    Args:
        noise: None (minibatch -> isotropic at the start's scale; others kept), or
            ``"none"`` / ``"isotropic"`` to force one.
    """
    _check(config, NETWORKS)
    if config.landscape == TeacherStudentSpec.name:
        return _teacher_student_equivalent(config, noise)
    d = config.to_dict()
    keep = set(OPTIMIZERS.fields()) | {"optimizer", *CARRIED}
    out = {k: v for k, v in d.items() if k in keep and v is not None}
    s1 = config.teacher_scale
    out.update(landscape=SpectralSpec.name, m=config.width, n=config.m + config.n,
               escape_rank=1, gamma=s1, bulk="constant", bulk_scale=FLAT_BULK * s1,
               quartic=0.0, basis="structured", saddle_point="zero",
               landscape_seed=config.landscape_seed, escape=config.escape)
    if config.escape == "loss":
        out["loss_drop"] = equivalent_loss_drop(config)
    elif config.escape == "alignment":  # c* = alignment * s, crossed where f' = -s c*
        out.update(escape="loss", loss_drop=s1 * s1 * config.alignment)
    else:
        out["radius"] = config.radius
    a_net = config.init_escape or 0.0
    if config.init == "random":
        eps = config.init_scale
        out.update(init="random", init_scale=eps,
                   init_escape=math.sqrt(a_net**2 + (config.width - 1) * eps * eps))
    else:
        out.update(init="saddle", init_escape=a_net)
    out.update(_noise_fields(config, noise))
    return Config.from_dict(out)


def _teacher_student_equivalent(config: Config, noise: str | None) -> Config:
    """The local spectral model of a ``teacher_student`` plateau (docs/teacher_student.md):
    the stacked h x (n + m) shape, gamma and the bulk from the plateau's numeric Hessian
    (:func:`~saddle.landscapes.teacher_student.plateau_curvature`), one escape mode, the
    same loss_drop or radius, the same optimizer, rates, init scale, seeds and budget."""
    if config.escape == "alignment":
        raise ValueError("escape: got 'alignment'; allowed: 'loss', 'projection' (a unit's "
                         "specialization has no counterpart on the quadratic model)")
    if NOISES[config.noise].state_dependent and noise != NoNoise.name:
        raise ValueError(f"noise: got {noise!r} for {config.noise!r} noise; allowed: "
                         f"{NoNoise.name!r} (the plateau's minibatch noise scale is not "
                         "derived)")
    curv = plateau_curvature(config)
    d = config.to_dict()
    keep = set(OPTIMIZERS.fields()) | {"optimizer", *CARRIED}
    out = {k: v for k, v in d.items() if k in keep and v is not None}
    out.update(landscape=SpectralSpec.name, m=config.width, n=config.m + config.n,
               escape_rank=1, gamma=curv["gamma"], bulk="constant",
               bulk_scale=curv["bulk_scale"] or FLAT_BULK * curv["gamma"], quartic=0.0,
               basis="structured", saddle_point="zero",
               landscape_seed=config.landscape_seed, escape=config.escape)
    if config.escape == "loss":
        out["loss_drop"] = config.loss_drop  # the quadratic reaches it at a^2 = 2 Delta/gamma
    else:
        out["radius"] = config.radius
    a_net = config.init_escape or 0.0
    if config.init == "random":  # E a^2 over the multiplicity directions at -gamma
        eps = config.init_scale
        out.update(init="random", init_scale=eps, init_escape=math.sqrt(
            a_net**2 + (curv["multiplicity"] - 1) * eps * eps))
    else:
        out.update(init="saddle", init_escape=a_net)
    out.update(_noise_fields(config, noise))
    return Config.from_dict(out)


def gd_plateau(config: Config) -> dict:
    """Gradient flow from the balanced start c0 (science.md section 1): c(t) = s / (1 +
    (s/c0 - 1) e^{-2 s t}), time t = lr k for GD.

    Returns ``plateau_time`` ln(s/c0)/(2s) and ``plateau_steps`` (÷ lr), and the time and
    steps at which c(t) reaches the escape criterion's c* (``crossing_*``; the loss
    criterion's c* = s - sqrt(s^2 - 2 Delta)), or None where c0 = 0 (never leaves)."""
    _check(config)
    s, c0, lr = config.teacher_scale, initial_overlap(config), config.learning_rate
    if c0 <= 0:
        return dict(c0=c0, plateau_time=None, plateau_steps=None, crossing_time=None,
                    crossing_steps=None)
    plateau = math.log(s / c0) / (2 * s)
    if config.escape == "loss":
        c_star = s - math.sqrt(max(s * s - 2 * config.loss_drop, 0.0))
    elif config.escape == "alignment":
        c_star = config.alignment * s  # the alignment is c / s
    else:
        c_star = config.radius**2 / 2  # the first unit's coordinate a = sqrt(2 c) (balanced)
    cross = None
    if c0 < c_star < s:
        cross = math.log((s / c0 - 1) / (s / c_star - 1)) / (2 * s)
    elif c_star <= c0:
        cross = 0.0
    return dict(c0=c0, c_star=c_star, plateau_time=plateau, plateau_steps=plateau / lr,
                crossing_time=cross, crossing_steps=None if cross is None else cross / lr)


def theory_values(equivalent: Config) -> list[dict]:
    """Every escape-time result of ``saddle.theory`` that applies to the equivalent, as
    ``saddle bounds`` lists them: name, kind, value (steps) and whether its assumptions
    hold."""
    from . import theory

    out = []
    equivalent = projection_twin(equivalent)
    for res in theory.applicable(equivalent):
        if res.quantity != "escape_time":
            continue
        out.append(dict(name=res.name, kind=res.kind, value=_safe(res.evaluate, equivalent),
                        assumptions_hold=bool(_safe(res.assumptions_hold, equivalent))))
    return out


def projection_twin(equivalent: Config) -> Config:
    """The equivalent with its loss criterion written as the projection criterion it is:
    on the flat-bulk quadratic, f = -gamma a^2/2 (+ a bulk term of order 1e-6), so f <=
    -loss_drop exactly when |a| >= sqrt(2 loss_drop / gamma). The theory's escape-time
    results are stated for the projection criterion (radius R)."""
    if equivalent.escape != "loss":
        return equivalent
    radius = math.sqrt(2 * equivalent.loss_drop / equivalent.gamma)
    return equivalent.replace(escape="projection", radius=radius)


def _safe(fn, config):
    """``fn(config)``, or None where a result's formula or assumption needs a field this
    config leaves unset (a loss-criterion config has no radius: TypeError on None)."""
    try:
        return fn(config)
    except TypeError:
        return None


def measure(config: Config, seeds: int | None = None) -> dict:
    """Run ``config`` (``seeds`` seeds, default its own) and return its KM median escape
    time with CI, escaped/total and the summary."""
    from .simulate import simulate

    cfg = config if seeds is None else config.replace(seeds=seeds)
    s = simulate(cfg).summary()
    low, high = s["median_escape_time_ci"]
    return dict(median=s["median_escape_time"], low=low, high=high, escaped=s["escaped"],
                runs=s["runs"])


def predict(config: Config, seeds: int | None = 4, noise: str | None = None,
            run: bool = True) -> dict:
    """What the spectral model predicts for a network config.

    Returns ``equivalent`` (the spectral config), ``theory`` (:func:`theory_values` of the
    equivalent), ``gd`` (:func:`gd_plateau`, for plain SGD without momentum on the linear
    network only, else None), ``curvature`` (teacher_student: the plateau's gamma, its
    multiplicity, the negative count and the bulk scale; else None) and
    ``equivalent_measured`` (:func:`measure` of the equivalent, when ``run``)."""
    eq = spectral_equivalent(config, noise=noise)
    plain_gd = (config.optimizer == SGDSpec.name and not (config.momentum or 0.0)
                and config.landscape == LinearNetworkSpec.name)
    curvature = (plateau_curvature(config) if config.landscape == TeacherStudentSpec.name
                 else None)
    return dict(equivalent=eq, theory=theory_values(eq),
                gd=gd_plateau(config) if plain_gd else None, curvature=curvature,
                equivalent_measured=measure(eq, seeds) if run else None)


# --- the networks experiment's analysis (used by saddle.reproduce) ---------------------------
# Frames are stored result rows with a ``method`` column (the report's optimizer label).

KEYS = ["method", "lr_protocol", "noise", "width", "D"]


def equivalent_points(spec):
    """The spectral equivalents of a network sweep's points, as a sweep spec
    (``<name>_equivalent``) with the same seeds and each point's labels. A point under a
    matched protocol maps at the learning rate the protocol gives the network; the
    equivalent runs at that rate (``fixed``): the same rate, not the same norm on its own
    shape. ``fixed`` and ``matched_*`` are the protocols the bridge maps."""
    from .sweep.protocols import MATCHED, matched_lr
    from .sweep.spec import Point, SweepSpec

    def network_config(p):
        if p.lr_protocol == "fixed":
            return p.config
        if p.lr_protocol not in MATCHED:
            raise ValueError(f"lr_protocol: got {p.lr_protocol!r}; allowed: fixed, "
                             f"{', '.join(MATCHED)} (the bridge maps one rate per point)")
        norm = MATCHED[p.lr_protocol]
        return p.config.replace(learning_rate=matched_lr(p.config, norm, spec.target(norm)))

    points = [Point(config=spectral_equivalent(network_config(p)), lr_protocol="fixed",
                    labels=p.labels) for p in spec.points]
    return SweepSpec(name=f"{spec.name}_equivalent", points=points, seeds=spec.seeds,
                     source=dict(description="spectral equivalents of " + spec.name))


def attach_network_keys(net, eq):
    """The rows of ``eq`` (stored equivalent runs) that are the equivalent of a condition in
    ``net``, with that condition's method, protocol, noise and width (matched by config
    hash: the equivalent runs at the network's learning rate)."""
    import pandas as pd

    from .records import config_from_row

    if net.empty or eq.empty:
        return pd.DataFrame(columns=[*KEYS, "escaped"])
    owner = {}
    for _, g in net.groupby("config_hash", sort=False):
        r = g.iloc[0]
        h = spectral_equivalent(config_from_row(r)).config_hash()
        owner[h] = dict(method=r["method"], lr_protocol=r["lr_protocol"], noise=r["noise"],
                        width=int(r["width"]))
    eq = eq[eq["config_hash"].isin(owner)].copy()
    for k in ("method", "lr_protocol", "noise", "width"):
        eq[k] = [owner[h][k] for h in eq["config_hash"]]
    return eq


def _medians(df, prefix: str):
    from .analysis import summarize

    if df.empty:
        return None
    s = summarize(df, by=KEYS)
    cols = dict(median=f"{prefix}median", median_low=f"{prefix}low",
                median_high=f"{prefix}high", escaped=f"{prefix}escaped")
    return s[[*KEYS, "runs", *cols]].rename(columns=cols)


def _predictions(net):
    """Per network condition: the GD plateau crossing (plain SGD) and the first escape-time
    estimate of the theory that applies to the equivalent with its assumptions holding."""
    import pandas as pd

    from .records import config_from_row

    rows = []
    for _, g in net.groupby(KEYS, sort=False):
        cfg = config_from_row(g.iloc[0])
        p = predict(cfg, run=False)
        held = [t for t in p["theory"] if t["assumptions_hold"] and t["value"] is not None]
        rows.append(dict(zip(KEYS, g.iloc[0][KEYS], strict=True),
                         gd_flow=p["gd"]["crossing_steps"] if p["gd"] else None,
                         theory=held[0]["value"] if held else None,
                         theory_result=held[0]["name"] if held else ""))
    return pd.DataFrame(rows)


def comparison_table(net, eq):
    """Per (method, noise, width, D): the network's KM median (95% CI) beside the measured KM
    median of its spectral equivalent (eq_median), their ratio, the gradient-flow crossing
    time (gd_flow, plain SGD) and the theory's estimate for the equivalent (theory)."""
    import pandas as pd

    if net.empty:
        return pd.DataFrame()
    out = _medians(net, "")
    eqm = _medians(attach_network_keys(net, eq), "eq_")
    if eqm is not None:
        out = out.merge(eqm.drop(columns=["runs"]), on=KEYS, how="left")
    else:
        out = out.assign(eq_median=math.nan, eq_low=math.nan, eq_high=math.nan)
    out = out.merge(_predictions(net), on=KEYS, how="left")
    out["ratio"] = out["median"] / out["eq_median"]
    return out.sort_values(["lr_protocol", "noise", "method", "D"]).reset_index(drop=True)


def exponents(net, eq):
    """Dimension exponents against D per (method, noise): the network's and its equivalent's
    (censored AFT fits, :func:`saddle.analysis.exponent_table`), side by side."""
    import pandas as pd

    from .analysis import exponent_table

    by = ["method", "lr_protocol", "noise"]
    cols = [*by, "exponent", "low", "high", "dims", "censored_frac"]
    e = exponent_table(net, by=by) if not net.empty else pd.DataFrame()
    if e.empty:
        return pd.DataFrame()
    e = e[[c for c in cols if c in e.columns]]
    q = attach_network_keys(net, eq)
    f = exponent_table(q, by=by) if not q.empty else pd.DataFrame()
    if f.empty:
        return e.assign(eq_exponent=math.nan, eq_low=math.nan, eq_high=math.nan)
    f = f[[*by, "exponent", "low", "high"]].rename(
        columns=dict(exponent="eq_exponent", low="eq_low", high="eq_high"))
    return e.merge(f, on=by, how="left")


def _order(g, col: str) -> tuple:
    """Methods by escape time (a median beyond the budget counts as slowest, ties by name)."""
    v = g[col].astype(float).fillna(math.inf)
    return tuple(m for _, m in sorted(zip(v, g["method"], strict=True)))


def carry_over(table, exps) -> list[str]:
    """The "what carries over" sentences, computed from the comparison and exponent tables."""
    if table.empty or table["eq_median"].isna().all():
        return ["No equivalent runs are stored: nothing to compare."]
    lines = []
    for (proto, noise), gn in table.groupby(["lr_protocol", "noise"]):
        same = [int(w) for w, g in gn.groupby("width") if _order(g, "median") ==
                _order(g, "eq_median")]
        widths = sorted(int(w) for w in gn["width"].unique())
        lines.append(f"{proto}/{noise}: the ordering of optimizers by KM median escape time is "
                     "the same "
                     f"on the network and on its spectral equivalent at {len(same)} of "
                     f"{len(widths)} widths" + (f" (h = {', '.join(map(str, same))})"
                                                if same else "") + ".")
    r = table["ratio"].astype(float)
    r = r[r.notna() & (r > 0) & r.map(math.isfinite)]
    if len(r):
        worst = table.loc[(r.map(math.log).abs()).idxmax()]
        lines.append(f"Network median ÷ equivalent median: median {r.median():.2f} over "
                     f"{len(r)} cells, range [{r.min():.2f}, {r.max():.2f}]; farthest from 1: "
                     f"{worst['method']} {worst['noise']} h = {int(worst['width'])} "
                     f"({worst['ratio']:.2f}).")
    if not exps.empty and "eq_low" in exps.columns:
        ok = [f"{e.method}/{e.lr_protocol}/{e.noise}" for e in exps.itertuples()
              if max(e.low, e.eq_low) <= min(e.high, e.eq_high)]
        lines.append(f"Dimension exponents: the network's and the equivalent's 95% CIs overlap "
                     f"for {len(ok)} of {len(exps)} (method, protocol, noise) series"
                     + (f" ({', '.join(ok)})" if ok else "") + ".")
    return lines
