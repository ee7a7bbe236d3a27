"""The paginator's memory of yielded markers behaves as a set, past its folds (connectors/paging/seen.py)."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.paging.seen import SeenMarkers

markers = st.one_of(st.text(max_size=12), st.sampled_from(["cust_1", "cust_2", "noid:ab", "", "é", "\ud83d"]))


@settings(max_examples=300, deadline=None)
@given(batches=st.lists(st.lists(markers, max_size=12), max_size=25), probes=st.lists(markers, max_size=30),
       recent=st.integers(1, 8))
def test_it_answers_as_a_set_would(batches: list[list[str]], probes: list[str], recent: int) -> None:
    seen, model = SeenMarkers(recent=recent), set()
    for batch in batches:
        seen.update(batch)
        model.update(batch)
        for probe in [*batch, *probes]:
            assert (probe in seen) == (probe in model), probe
    seen.clear()
    assert not any(probe in seen for probe in [*probes, *model])


_GROWTH = """
import sys, tracemalloc
from connectors.paging.seen import SeenMarkers
tracemalloc.start()
seen = SeenMarkers() if sys.argv[1] == "seen" else set()
for start in range(0, 400_000, 100):  # each page's ids are new strings, freed after it unless kept
    seen.update([f"cust_{i:08d}" for i in range(start, start + 100)])
held = tracemalloc.get_traced_memory()[0]  # what is still allocated now: the structure, not its transients
assert "cust_00000000" in seen and "cust_00399999" in seen and "cust_00400000" not in seen
print(held / 2**20)
"""


def _growth_mib(kind: str) -> float:
    done = subprocess.run([sys.executable, "-c", _GROWTH, kind], check=True, capture_output=True, text=True)
    return float(done.stdout)


def test_ids_take_a_fraction_of_what_a_set_of_them_takes() -> None:
    seen, plain = _growth_mib("seen"), _growth_mib("set")
    assert seen < plain / 3, f"400,000 markers: {seen:.0f} MiB, as a set of strings {plain:.0f} MiB"
