from __future__ import annotations

import json
from pathlib import Path

import pytest

from vdata.core.benchdata import locate
from vdata.core.errors import UserError
from vdata.core.io import JsonlJournal, read_records, write_records
from vdata.core.records import Record, normalise_text, record_id, validate_category


def test_record_id_is_content_address() -> None:
    a = Record(text="The nurse, a man, was  decisive.")
    b = Record(text=" the nurse, a man, was decisive. ", id="forged")
    assert a.id == b.id == record_id("THE NURSE, A MAN, WAS DECISIVE.")
    assert normalise_text('"Hello   World"') == "hello world"


def test_validate_category() -> None:
    assert validate_category("Race+Gender") == "race+gender"
    assert validate_category("sexual_orientation") == "sexual-orientation"
    with pytest.raises(ValueError, match="allowed"):
        validate_category("astrology")
    with pytest.raises(ValueError):
        validate_category("race+race")


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_roundtrip_formats(tmp_path: Path, ext: str) -> None:
    recs = [
        Record(
            text=f"Sentence {i} about a woman who is brave.",
            target="woman",
            attribute="brave",
            attributes={"tone": "calm"} if i else None,
            params={"t": 0.5},
        )
        for i in range(3)
    ]
    p = tmp_path / f"out.{ext}"
    write_records(recs, p)
    assert read_records(p) == recs


def test_journal_recovers_torn_line(tmp_path: Path) -> None:
    p = tmp_path / "j.jsonl"
    with JsonlJournal(p) as j:
        assert j.append([Record(text="One."), Record(text="Two.")]) == 2
    with p.open("a") as f:
        f.write('{"id": "abc", "text": "torn')  # a crash mid-write
    with JsonlJournal(p) as j:
        assert j.append([Record(text="Two."), Record(text="Three.")]) == 1
        assert [r.text for r in j.records()] == ["One.", "Two.", "Three."]


def test_read_errors_name_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"text": "ok"}) + "\n{not json\n")
    with pytest.raises(UserError, match=r"bad.jsonl:2"):
        read_records(p)


def test_locate_verifies_checksum(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert locate("crows_pairs/crows_pairs_anonymized.csv").exists()
    bad = tmp_path / "crows_pairs"
    bad.mkdir()
    (bad / "crows_pairs_anonymized.csv").write_text("tampered")
    with pytest.raises(UserError, match="checksum mismatch"):
        locate("crows_pairs/crows_pairs_anonymized.csv", data_dir=tmp_path)
