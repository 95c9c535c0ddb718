"""The cron extensions in words (for `next`, `plan`, the dashboard), and plain cron unchanged."""

from __future__ import annotations

import pytest

from reconciler.core.describe import describe_cron

WORDS = [
    ("0 9 L * *", "At 09:00, on the last day of the month"),
    ("0 9 l * *", "At 09:00, on the last day of the month"),
    ("0 9 L-3 * *", "At 09:00, on the day 3 days before the last day of the month"),
    ("0 9 L-1 * *", "At 09:00, on the day 1 day before the last day of the month"),
    ("0 9 LW * *", "At 09:00, on the last weekday of the month"),
    ("0 9 L-3W * *", "At 09:00, on the weekday nearest 3 days before the last day of the month"),
    ("0 9 15W * *", "At 09:00, on the weekday nearest day 15 of the month"),
    ("0 9 * * 5L", "At 09:00, on the last Friday of the month"),
    ("0 9 * * 7L", "At 09:00, on the last Sunday of the month"),
    ("0 9 * * friL", "At 09:00, on the last Friday of the month"),
    ("0 9 * * 2#3", "At 09:00, on the third Tuesday of the month"),
    ("0 9 * * tue#3", "At 09:00, on the third Tuesday of the month"),
    # lists are unions
    ("0 9 1,L * *", "At 09:00, on day 1 and the last day of the month"),
    ("0 9 1-5,L * *", "At 09:00, on days 1 through 5 and the last day of the month"),
    ("0 9 * * 2#3,5L", "At 09:00, on the third Tuesday of the month and the last Friday of the month"),
    # cronie's star rule: both restricted is OR; a field starting with * makes it AND
    ("0 9 L * 5L", "At 09:00, on the last day of the month, or on the last Friday of the month"),
    ("0 9 L * mon-fri", "At 09:00, on the last day of the month, or on Monday through Friday"),
    ("0 9 */2 * 5L", "At 09:00, on every 2nd day of the month, if it is also the last Friday of the month"),
    # times and months still come from cron-descriptor
    ("*/15 9-17 L 1,7 *", "Every 15 minutes, between 09:00 and 17:59, on the last day of the month, "
                          "only in January and July"),
]


@pytest.mark.parametrize(("expr", "words"), WORDS)
def test_extensions_are_said_in_words_with_cronies_or_and_and(expr: str, words: str) -> None:
    assert describe_cron(expr) == words


@pytest.mark.parametrize(("expr", "words"), [
    ("0 9 13 * 5", "At 09:00, on day 13 of the month, or on Friday"),
    ("@monthly", "At 00:00, on day 1 of the month"),
    ("0 9 * * wed", "At 09:00, only on Wednesday"),  # a name with a W is not the W extension
])
def test_plain_cron_is_still_said_by_cron_descriptor(expr: str, words: str) -> None:
    assert describe_cron(expr) == words
