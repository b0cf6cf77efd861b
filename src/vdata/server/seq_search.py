"""The steps of a PostgreSQL search in seq order (the API's substring search, the pages' word search),
each decided from what the step before it found. Pure logic: store.py and browse.py build and run the
statements.

A walk of the (status, seq) index that tests each row costs what a page needs, whatever the table's
size, when the string is frequent; the GIN index costs what all its matches cost (fetched and sorted),
which grows with the table. Left to itself the planner misjudges the match count both ways: it sorted
all matches of a frequent word (1.7 s at 10M rows) and walked every row for a rare one (10.5 s). So:

1. walk: the text test over the next PROBE_ROWS rows, a subquery whose LIMIT no plan can skip.
2. resume: if that found some matches but not a page, and at the rate seen the string has more than
   INDEX_MATCHES matches in all, the search goes on after the walk's last row, bounded to the seq range
   that holds the rest of the page RANGE_MARGIN times over at that rate. The planner picks how: walk it
   and stop at the page (at most that range, whatever the table's size), or AND the GIN index with the
   seq range (the string's posting lists, which grow with the table but cost far less per entry than
   fetching and sorting every match). Its rows join the walk's.
3. index: otherwise (a string with few matches: sorting them all is cheap), or if the range held too
   few, the GIN index over every row, its matches sorted.

Measured at 10M rows (warm, one query): the second step used to walk again from the start, or sort every
match: 10-24 ms for the bench's frequent words, 14 ms (words) to 56-135 ms (substrings) through the
index; resumed and bounded, 4-10 ms. At 10^5 rows the same words have 80-420 matches: 1-2 ms sorted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PROBE_ROWS = 5_000
RANGE_MARGIN = 2
INDEX_MATCHES = 2_000


@dataclass(frozen=True)
class WalkFacts:
    """What the walk read (one index-only query after it) and how many rows the filters select."""

    first: int  # seq of its first row, in reading order
    last: int  # seq of its last row
    walked: int  # rows it read: fewer than it was allowed means it read every row there is
    total: int  # rows the filters but the text select (the count table's groups: an upper bound)


@dataclass(frozen=True)
class Resume:
    """The search after a walk: the rows after seq `after` up to `bound`, both in reading order."""

    after: int
    bound: int


def after_walk(facts: WalkFacts, found: int, wanted: int) -> Resume | None:
    """The resumed search after a walk that found `found` (0 < found < wanted) of the `wanted` rows, or
    None when the index over every row should answer instead: the string has few matches in all."""
    if facts.total * found / facts.walked <= INDEX_MATCHES:
        return None
    span = abs(facts.last - facts.first) + 1
    length = math.ceil(RANGE_MARGIN * span * (wanted - found) / found)
    return Resume(facts.last, facts.last + length if facts.last >= facts.first else facts.last - length)


@dataclass
class SeqSearch:
    """The steps of one page read: run `step` ("walk", "resume", "index"; "" when done), pass its rows
    to `add` (with `WalkFacts` when `needs_facts`), until `rows` holds the answer: the page's rows and
    the one after it, or all there are."""

    wanted: int  # a page's rows and one more (whether a next page exists)
    walking: bool  # a PostgreSQL text search in seq order; otherwise one step, the statement itself
    probe_rows: int = field(default_factory=lambda: PROBE_ROWS)
    rows: list[Any] = field(default_factory=list)
    step: str = ""
    resume: Resume | None = None

    def __post_init__(self) -> None:
        self.step = "walk" if self.walking else "index"

    def needs_facts(self, raw: list[Any]) -> bool:
        return self.step == "walk" and 0 < len(raw) < self.wanted

    def add(self, raw: list[Any], facts: WalkFacts | None = None) -> None:
        if self.step == "index":
            self.rows, self.step = raw, ""
            return
        self.rows += raw
        if len(self.rows) >= self.wanted:
            self.rows, self.step = self.rows[: self.wanted], ""
        elif self.step == "resume" or not raw:  # the range held too few, or the walk found nothing
            self.step = "index"
        else:
            assert facts is not None, "a walk that found some rows needs its WalkFacts"
            if facts.walked < self.probe_rows:  # it read every row there is: its matches are all
                self.step = ""
                return
            self.resume = after_walk(facts, len(raw), self.wanted)
            self.step = "resume" if self.resume else "index"
