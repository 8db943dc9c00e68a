"""Report shapes the lab draws: charts beside tables, a queue's occupancy over time."""

from __future__ import annotations

from collections.abc import Sequence

from shared import REPORT_WIDTH, bar


def binSteps(trace: Sequence[tuple[float, int]], duration: float, bins: int) -> list[tuple[float, int]]:
    """(time-averaged value, peak value) of a step function in each of ``bins`` equal time slices."""
    out: list[tuple[float, int]] = []
    index, current = 0, 0
    for slot in range(bins):
        start, end = duration * slot / bins, duration * (slot + 1) / bins
        while index < len(trace) and trace[index][0] <= start:
            current = trace[index][1]
            index += 1
        area, peak, at = 0.0, current, start
        while index < len(trace) and trace[index][0] < end:
            area += current * (trace[index][0] - at)
            at, current = trace[index]
            peak = max(peak, current)
            index += 1
        area += current * (end - at)
        out.append((area / (end - start) if end > start else float(current), peak))
    return out


def occupancyPlot(
    trace: Sequence[tuple[float, int]],
    maxsize: int,
    duration: float,
    *,
    width: int = 34,
    height: int | None = None,
    title: str = "",
) -> list[str]:
    """An ASCII plot of a queue's size over time: ``#`` where it sat, ``.`` where it only peaked."""
    rows = height or max(1, min(maxsize, 10))
    step = maxsize / rows
    slices = binSteps(trace, duration, width)
    lines = [title] if title else []
    for row in range(rows, 0, -1):
        level = row * step
        cells = "".join(
            "#" if mean >= level - step / 2 else "." if peak >= level - step / 2 else " " for mean, peak in slices
        )
        lines.append(f"{level:>4g} |{cells}")
    lines.append("     +" + "-" * width)
    lines.append("      0" + f"{duration * 1e3:.0f} ms".rjust(width - 1))
    return lines


def barChart(points: Sequence[tuple[str, float]], *, width: int = 40, unit: str = "", title: str = "") -> str:
    """One labelled bar per point, scaled to the largest value; the bars narrow to fit 100 columns."""
    if not points:
        return title
    top = max(value for _, value in points)
    labelWidth = max(len(label) for label, _ in points)
    values = [f"{value:,.3g}{unit}" for _, value in points]
    width = max(1, min(width, REPORT_WIDTH - labelWidth - 4 - max(map(len, values))))
    lines = [title] if title else []
    lines.extend(
        f"{label.rjust(labelWidth)} | {bar(value, top, width).ljust(width)} {text}"
        for (label, value), text in zip(points, values, strict=True)
    )
    return "\n".join(lines)


def sideBySide(blocks: Sequence[Sequence[str]], gap: int = 4) -> str:
    """Text blocks next to each other, each padded to its widest line."""
    widths = [max((len(line) for line in block), default=0) for block in blocks]
    height = max((len(block) for block in blocks), default=0)
    lines = []
    for row in range(height):
        cells = [
            (block[row] if row < len(block) else "").ljust(width) for block, width in zip(blocks, widths, strict=True)
        ]
        lines.append((" " * gap).join(cells).rstrip())
    return "\n".join(lines)
