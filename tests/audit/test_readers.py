"""Every input format, and bad input: a clear error naming the file and line (exit code 2 via the CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vdata.audit.readers import DatasetReader, category_from_path
from vdata.core.errors import UserError
from vdata.core.records import Record


def _items(*paths: Path, text_column: str | None = None) -> list:
    return list(DatasetReader(list(paths), text_column))


def test_plain_text_csv_tsv_jsonl(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("The nurse fixed the car.\n\n  The pilot sang.  \n", encoding="utf-8")
    (tmp_path / "b.csv").write_text('sentence,label\n"Hello, the woman said.",x\n', encoding="utf-8")
    (tmp_path / "c.tsv").write_text("id\tbody\n1\tThe man cooked dinner.\n", encoding="utf-8")
    (tmp_path / "d.jsonl").write_text(json.dumps({"text": "The girl codes.", "category": "gender"}) + "\n")
    txt = _items(tmp_path / "a.txt")
    assert [(i.text, i.line) for i in txt] == [("The nurse fixed the car.", 1), ("The pilot sang.", 3)]
    assert _items(tmp_path / "b.csv")[0].text == "Hello, the woman said."
    assert _items(tmp_path / "c.tsv", text_column="body")[0].text == "The man cooked dinner."
    rec = _items(tmp_path / "d.jsonl")[0]
    assert rec.record is not None and rec.category == "gender" and rec.id == Record(text="The girl codes.").id
    # several files form one dataset with consecutive ordinals
    assert [i.ordinal for i in _items(tmp_path / "a.txt", tmp_path / "d.jsonl")] == [0, 1, 2]


def test_parquet(tmp_path: Path) -> None:
    from vdata.core.io import write_records

    write_records([Record(text="The old man ran a marathon.", category="age")], tmp_path / "r.parquet")
    item = _items(tmp_path / "r.parquet")[0]
    assert item.text == "The old man ran a marathon." and item.category == "age"


def test_han_formats(data_dir: Path) -> None:
    han = data_dir / "han2024-synthetic" / "Targeted_Debiasing" / "Gender"
    raw = _items(han / "Synthetic_Gender_1S.json")
    prompt = _items(han / "Synthetic_Gender_1.json")
    assert len(raw) == len(prompt) == 500
    assert raw[0].category == prompt[0].category == "gender"
    assert raw[0].target and raw[0].attribute and raw[0].text.endswith(".")
    first = json.loads((han / "Synthetic_Gender_1.json").read_text())[0]
    assert prompt[0].text == " ".join(
        (first["prompt"].replace("{}", first["subject"]).rstrip() + " " + first["target_new"]["str"]).split()
    )
    assert prompt[0].attribute == first["target_new"]["str"]


def test_category_from_path() -> None:
    assert category_from_path(Path("Targeted_Debiasing/Racial/Synthetic_Race_1S.json")) == "race"
    assert category_from_path(Path("General_Debiasing/Synthetic_General_1S.json")) == ""


def test_malformed_rows_are_counted_not_fatal(tmp_path: Path) -> None:
    f = tmp_path / "m.jsonl"
    rows = [
        {"text": "The woman led the team."},
        {"text": ""},
        {"text": "ok fine here", "attributes": 5},
        [1, 2],
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    items = _items(f)
    assert [i.malformed is not None for i in items] == [False, True, True, True, True]
    assert "invalid record" in items[2].malformed


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"", "empty file"),
        ("empty.jsonl", b"\n\n", "empty file"),
        ("nocol.csv", b"a,b\n1,2\n", "nocol.csv:1: no text column"),
        ("nocol.jsonl", b'{"body": "x"}\n', "nocol.jsonl:1: no text column"),
        (
            "mixed.txt",
            "The café is open.\n".encode() + "Le café est là.\n".encode("latin-1"),
            "mixed.txt:2: not UTF-8",
        ),
        ("mixed.csv", b"text\nfine\n" + "caf\xe9\n".encode("latin-1"), "mixed.csv:3: not UTF-8"),
        ("bad.json", b'[{"text": "a"},', "bad.json:1: not valid JSON"),
        ("notjson.jsonl", b"this is not json\n", "notjson.jsonl:1: not valid JSON"),
        ("data.xlsx", b"PK", "unknown file type"),
    ],
)
def test_bad_input_errors_name_file_and_line(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        _items(f)


def test_missing_explicit_text_column(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("text\nhello there friend\n")
    with pytest.raises(UserError, match=r"no column 'body'.*--text-column"):
        _items(f, text_column="body")


def test_cli_exit_code_2_and_nothing_written(tmp_path: Path) -> None:
    bad = tmp_path / "mixed.txt"
    bad.write_bytes(b"fine line here\n" + "caf\xe9 au lait\n".encode("latin-1"))
    out = tmp_path / "report"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vdata.cli",
            "audit",
            str(bad),
            "--out",
            str(out),
            "--embed-sample",
            "0",
            "--no-benchmark-overlap",
            "--filter",
            str(tmp_path / "clean.jsonl"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "mixed.txt:2" in proc.stderr and "UTF-8" in proc.stderr
    assert not (out / "report.json").exists() and not (tmp_path / "clean.jsonl").exists()
