"""What kinds share at run time: the capped buffer and the redaction of a stream."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.kinds.runtime import CappedBuffer, Redactor


def test_capped_buffer_keeps_head_and_tail() -> None:
    buf = CappedBuffer(10)
    for chunk in (b"abc", b"defgh", b"ijklmnop", b"qr"):
        buf.write(chunk)
    assert (bytes(buf.head), bytes(buf.tail), buf.dropped) == (b"abcde", b"nopqr", 8)


@settings(max_examples=300, deadline=None)
@given(text=st.text("abcX", max_size=60), secrets=st.lists(st.text("abc", min_size=1, max_size=6), max_size=4),
       cuts=st.lists(st.integers(0, 60), max_size=8))
def test_redaction_of_a_stream_does_not_depend_on_where_it_is_split(text: str, secrets: list[str],
                                                                     cuts: list[int]) -> None:
    whole = Redactor(secrets)
    expected = whole.feed(text.encode()) + whole.flush()
    pieces = Redactor(secrets)
    data, got, last = text.encode(), b"", 0
    for cut in sorted(c for c in cuts if c <= len(data)):
        got += pieces.feed(data[last:cut])
        last = cut
    got += pieces.feed(data[last:]) + pieces.flush()
    assert got == expected
    if secrets:
        longest_first = sorted(set(secrets), key=len, reverse=True)
        assert got.decode() == re.sub("|".join(map(re.escape, longest_first)), "[redacted]", text)
