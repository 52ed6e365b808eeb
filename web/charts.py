"""Charts drawn on the server as SVG geometry (no JavaScript; CSP allows no inline script or style)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Bar:
    label: str
    value: int
    y: int
    width: int
    text_y: int
    value_x: int
    css: str = ""


@dataclass
class BarChart:
    bars: list[Bar]
    width: int
    height: int
    label_width: int
    plot_width: int
    title: str
    bar_height: int = 22

    @property
    def label_x(self) -> int:
        """Where the labels end (they are right-aligned against the bars)."""
        return max(self.label_width - 8, 0)

    @property
    def total(self) -> int:
        return sum(bar.value for bar in self.bars)


def horizontal_bars(
    items: list[tuple[str, int]] | list[tuple[str, int, str]],
    *,
    title: str,
    label_width: int = 170,
    plot_width: int = 360,
    bar_height: int = 22,
    gap: int = 8,
) -> BarChart:
    """One bar per item, scaled to the largest value; the values are printed next to the bars."""
    top = max([item[1] for item in items] + [1])
    bars = []
    for index, item in enumerate(items):
        label, value = item[0], item[1]
        css = item[2] if len(item) > 2 else ""
        y = index * (bar_height + gap)
        width = max(round(plot_width * value / top), 1) if value > 0 else 0
        bars.append(
            Bar(
                label=label,
                value=value,
                y=y,
                width=width,
                text_y=y + bar_height - 6,
                value_x=label_width + width + 6,
                css=css,
            )
        )
    height = max(len(items) * (bar_height + gap) - gap, bar_height)
    return BarChart(
        bars=bars,
        width=label_width + plot_width + 50,
        height=height,
        label_width=label_width,
        plot_width=plot_width,
        title=title,
        bar_height=bar_height,
    )
