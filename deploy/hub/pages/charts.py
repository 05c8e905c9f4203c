"""Daily-spend charts as Plotly figures (JSON), drawn in the browser by the plotly.min.js
that the plotly package bundles: the page needs no internet."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import plotly
import plotly.graph_objects as go


def daily_figure(budget: str, days: list[str], users: dict[str, list[float]]) -> str:
    """Stacked bars, one series per user: the figure's JSON for Plotly.newPlot."""
    figure = go.Figure(
        [go.Bar(x=days, y=values, name=user, hovertemplate="%{x}: $%{y:.4f}") for user, values in users.items()]
    )
    figure.update_layout(
        title=f"{budget}: spend per day (USD)",
        barmode="stack",
        height=260,
        margin={"l": 50, "r": 20, "t": 40, "b": 40},
        yaxis={"title": "USD", "rangemode": "tozero"},
        xaxis={"type": "category"},
        showlegend=len(users) > 1,
    )
    return figure.to_json()


@cache
def plotly_js() -> bytes:
    """The bundled plotly.min.js (read once; about 4.8 MB)."""
    return (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
