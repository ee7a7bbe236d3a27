"""Stage statistics as data, words only for display.

Each stats class gives its typed `figures()` under stable keys
(`unlinked`, `created`, ...): that is what the run history keeps
(`pipelines.reporting.record`) and what `pipelines.summary` reads. Labels
live in one display dict per stage (`LABELS` beside each stats class) and
are applied by `labelled` for the Dagster UI only; the result still
carries the figures it was made from (`Display.figures`), so a step that
hands `record` its display stores figures all the same. No code path
reads a label back: renaming one changes what is shown, nothing else.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Union


class Display(dict):  # type: ignore[type-arg]
    """A stage's metadata as shown (label -> value), with the typed figures it was rendered from."""

    def __init__(self, shown: Mapping[str, Any], figures: Mapping[str, Any]) -> None:
        super().__init__(shown)
        self.figures = dict(figures)


class HasFigures(Protocol):
    def figures(self) -> dict[str, Any]:
        """The stage's figures under stable keys (ints, lists, short texts)."""


def labelled(figures: Mapping[str, Any], labels: Mapping[str, str], *,
             shown: Mapping[str, Any] | None = None) -> Display:
    """`figures` under their display labels, in the labels' order (a figure without a label is not shown).

    `shown`: how some figures read instead of their value (None as "no", a
    day range as text); the Display keeps the figures themselves.
    """
    values = {**figures, **(shown or {})}
    return Display({label: values[key] for key, label in labels.items() if key in values}, figures)


def figures_of(stats: Union[Mapping[str, Any], HasFigures]) -> dict[str, Any]:
    """What the run history keeps: a stats object's `figures()`, a `Display`'s figures, or a plain dict as is."""
    if isinstance(stats, Display):
        return dict(stats.figures)
    if isinstance(stats, Mapping):
        return dict(stats)
    return stats.figures()
