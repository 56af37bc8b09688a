"""Matplotlib helpers: territory map, balance bars, travel-versus-disruption curve.

Each helper draws on a given ``Axes`` (or a new figure) and returns the ``Figure``; nothing is shown
or saved here: the caller decides (a notebook shows it, the stage saves it to ``ctx.figure_path``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from salesops_models.territory.result import AlignmentResult


def _axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    # a bare Figure (no pyplot): no global state, works under any backend, shown by Jupyter
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def plot_territory_map(
    result: AlignmentResult,
    accounts: pd.DataFrame,
    reps: pd.DataFrame,
    ax: Axes | None = None,
    moved_only_outline: bool = True,
) -> Figure | None:
    """Territories as areas on a longitude/latitude map [deg], accounts as dots, stars = home bases.

    The areas are drawn by :func:`draw_territory_areas`. Accounts that changed owner get a black
    outline when ``moved_only_outline``. Colours repeat after 20 territories. ``None`` when the
    accounts have no locations.
    """
    if not {"lat", "lon"} <= set(accounts.columns) or accounts[["lat", "lon"]].isna().any(axis=None):
        return None
    fig, ax = _axes(ax, (8, 6))
    asg = result.assignments.merge(
        accounts[["account_id", "lat", "lon"]].astype({"account_id": str}), on="account_id"
    )
    rep_ids = list(result.territories["rep_id"])
    colours = colormaps["tab20"]
    colour_of = {r: colours(i % 20) for i, r in enumerate(rep_ids)}
    c = asg["rep_id"].map(colour_of).tolist()
    draw_territory_areas(ax, asg["lon"].to_numpy(float), asg["lat"].to_numpy(float), asg["rep_id"], colour_of)
    edge = np.where(asg["moved"].to_numpy() & moved_only_outline, "black", "none")
    ax.scatter(asg["lon"], asg["lat"], s=6, c=c, edgecolors=edge, linewidths=0.4, zorder=3)
    if {"home_lat", "home_lon"} <= set(reps.columns):
        home = reps.astype({"rep_id": str}).set_index("rep_id").loc[rep_ids]
        ax.scatter(
            home["home_lon"],
            home["home_lat"],
            marker="*",
            s=120,
            c=[colour_of[r] for r in rep_ids],
            edgecolors="black",
            linewidths=0.8,
        )
    ax.set_xlabel("longitude [deg]")
    ax.set_ylabel("latitude [deg]")
    ax.set_title(f"Territories ({len(rep_ids)} reps, {result.moved} accounts moved)")
    ax.set_aspect(1 / np.cos(np.radians(float(asg["lat"].mean()))) if len(asg) else 1.0)
    return fig


def draw_territory_areas(
    ax: Axes,
    lon: np.ndarray,
    lat: np.ndarray,
    rep_id: pd.Series | np.ndarray,
    colour_of: dict[str, object] | None = None,
    alpha: float = 0.35,
) -> None:
    """Fill each territory's area: the Delaunay triangles of the accounts, coloured by their territory.

    A triangle takes the territory that holds at least two of its three accounts (a triangle whose
    accounts lie in three territories stays blank: a border); triangles with an edge cut by the rule of
    :func:`~salesops_models.territory.contiguity.adjacency_from_locations` (long edges across empty
    land or water) stay blank too. The filled triangles of one territory are the area it covers; a
    territory in pieces shows as several patches.

    Parameters
    ----------
    ax
        Axes in longitude [deg] (x) and latitude [deg] (y).
    lon, lat
        Account locations [deg].
    rep_id
        Territory of each account.
    colour_of
        Colour per rep id (default: ``tab20`` in order of first appearance).
    """
    from matplotlib.collections import PolyCollection
    from scipy.spatial import Delaunay, QhullError

    from salesops_models.territory.contiguity import adjacency_from_locations

    rep = np.asarray(pd.Series(rep_id).astype(str))
    if colour_of is None:
        colour_of = {r: colormaps["tab20"](i % 20) for i, r in enumerate(pd.unique(rep))}
    pts = np.c_[lon, lat]
    if len(np.unique(pts, axis=0)) < 3:
        return
    try:
        tri = Delaunay(pts, qhull_options="QJ")
    except QhullError:
        return
    # the same long-edge rule as the adjacency graph: keep a triangle only if its three edges are kept
    graph = adjacency_from_locations(lat, lon, np.arange(len(rep)).astype(str), np.arange(len(rep)))
    s = tri.simplices
    kept = np.logical_and.reduce(
        [np.asarray(graph.matrix[s[:, i], s[:, j]]).ravel() > 0 for i, j in ((0, 1), (1, 2), (0, 2))]
    )
    owner = rep[s]
    major = np.where(
        owner[:, 0] == owner[:, 1],
        owner[:, 0],
        np.where(owner[:, 2] == owner[:, 1], owner[:, 1], owner[:, 2]),
    )
    has_major = (owner[:, 0] == owner[:, 1]) | (owner[:, 1] == owner[:, 2]) | (owner[:, 0] == owner[:, 2])
    show = kept & has_major
    polys = pts[s[show]]
    ax.add_collection(
        PolyCollection(
            polys, facecolors=[colour_of[m] for m in major[show]], edgecolors="none", alpha=alpha, zorder=1
        )
    )


def plot_balance_bars(result: AlignmentResult, metric: str | None = None, ax: Axes | None = None) -> Figure:
    """Bars of each territory's load relative to its target [-], with the tolerance band shaded."""
    m = metric or result.metrics[0]
    ter = result.territories.sort_values(f"{m}_deviation")
    fig, ax = _axes(ax, (max(6, 0.22 * len(ter)), 4))
    rel = 1 + ter[f"{m}_deviation"].to_numpy()
    lo = (ter[f"{m}_lower"] / ter[f"{m}_target"].where(ter[f"{m}_target"] > 0)).min()
    hi = (ter[f"{m}_upper"] / ter[f"{m}_target"].where(ter[f"{m}_target"] > 0)).max()
    outside = (rel < lo - 1e-9) | (rel > hi + 1e-9)
    ax.axhspan(lo, hi, color="tab:green", alpha=0.15, label=f"tolerance band {lo:.2f}-{hi:.2f}")
    ax.bar(range(len(ter)), rel, color=np.where(outside, "tab:red", "tab:blue"))
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(range(len(ter)), ter["rep_id"], rotation=90, fontsize=7)
    ax.set_ylabel(f"{m} / target [-]")
    ax.set_title(f"Balance of {m}")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def plot_tradeoff(curve: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Travel against disruption share from :func:`~salesops_models.territory.disruption_tradeoff`."""
    fig, ax = _axes(ax, (6, 4))
    c = curve.sort_values("disruption_share")
    ax.plot(100 * c["disruption_share"], c["travel"], marker="o")
    ax.set_xlabel("disruption [% of owned value moved]")
    ax.set_ylabel("travel [km x weight]")
    ax.set_title("Travel versus disruption")
    return fig
