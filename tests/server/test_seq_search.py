"""Known answers for the steps of a PostgreSQL search in seq order (seq_search.py): when a walk's finds
resume the search, how far, and when the index over every row answers instead."""

from __future__ import annotations

from vdata.server.seq_search import Resume, SeqSearch, WalkFacts, after_walk

BIG, SMALL = 10_000_000, 100_000


def test_a_walk_that_found_some_resumes_over_twice_the_range_its_rate_says_the_page_needs() -> None:
    # 7 of 51 in 5,000 rows over seq 1..5,000: ~14,000 matches at 10^7 rows, too many to sort; the 44
    # more need ~31,429 rows, and the range holds them twice over: ceil(2 x 5,000 x 44 / 7) = 62,858.
    assert after_walk(WalkFacts(1, 5_000, 5_000, BIG), 7, 51) == Resume(5_000, 67_858)
    # The same rate at 10^5 rows: 140 matches, cheaper sorted than searched for.
    assert after_walk(WalkFacts(1, 5_000, 5_000, SMALL), 7, 51) is None
    assert after_walk(WalkFacts(1, 5_000, 5_000, 1_428_572), 7, 51) is not None  # 2,000.0008 matches
    # Read backwards (descending seq), the range lies below the walk's last row.
    assert after_walk(WalkFacts(100_000, 95_001, 5_000, BIG), 7, 51) == Resume(95_001, 95_001 - 62_858)
    # The walk read 5,000 rows spread over 20,000 seq values (a filtered walk): the range is 4x longer.
    assert after_walk(WalkFacts(1, 20_000, 5_000, BIG), 7, 51) == Resume(20_000, 20_000 + 251_429)


def test_one_step_without_a_walk() -> None:
    search = SeqSearch(21, walking=False)
    assert search.step == "index"
    search.add(["a", "b"])
    assert search.step == "" and search.rows == ["a", "b"]


def test_the_steps_after_a_walk() -> None:
    full = SeqSearch(3, walking=True, probe_rows=10)
    full.add([1, 2, 3])  # a page and the row after it: done
    assert full.step == "" and full.rows == [1, 2, 3]

    rare = SeqSearch(3, walking=True, probe_rows=10)
    assert not rare.needs_facts([])
    rare.add([])  # found nothing: the index
    assert rare.step == "index"
    rare.add([7])
    assert rare.step == "" and rare.rows == [7]

    short = SeqSearch(3, walking=True, probe_rows=10)
    assert short.needs_facts([1])
    short.add([1], WalkFacts(1, 8, 8, 8))  # read 8 of the 10 rows allowed: there are no more
    assert short.step == "" and short.rows == [1]

    resumed = SeqSearch(3, walking=True, probe_rows=10)
    resumed.add([1], WalkFacts(1, 10, 10, BIG))
    assert resumed.step == "resume" and resumed.resume == Resume(10, 50)
    resumed.add([30, 40, 50])  # the walk's row and the range's first two: done
    assert resumed.step == "" and resumed.rows == [1, 30, 40]

    too_few = SeqSearch(3, walking=True, probe_rows=10)
    too_few.add([1], WalkFacts(1, 10, 10, BIG))
    too_few.add([30])  # the range held too few: the index over every row answers alone
    assert too_few.step == "index"
    too_few.add([1, 30, 60])
    assert too_few.step == "" and too_few.rows == [1, 30, 60]
