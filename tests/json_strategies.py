"""Hypothesis strategies for JSON session data."""

from __future__ import annotations

from hypothesis import strategies as st

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=4), json_values, max_size=5)
