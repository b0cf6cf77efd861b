"""The post-`vdata gen` contribution offer: when it is asked, what it sends, and the one-time donation note."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from vdata.core.config import UserConfig
from vdata.core.io import write_records
from vdata.core.records import Record
from vdata.server.contribute import AskChoice, after_generation, marker_path, offer_contribution

from .conftest import Server, sample_records


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own data dir, so the donation marker of one test never affects another."""
    home = tmp_path / "home"
    monkeypatch.setenv("VDATA_HOME", str(home))
    return home


def records(n: int, prefix: str = "Contributed") -> list[Record]:
    return [Record(**r) for r in sample_records(n, prefix)]


def never_asked(*_args: object) -> object:
    raise AssertionError("the user must not be asked")


def scripted(answer: str) -> AskChoice:
    """A scripted user at the prompt (a test double for the terminal, not for the code under test)."""
    questions: list[str] = []

    def ask(question: str, choices: list[str], default: str) -> str:
        questions.append(question)
        assert answer in choices and default == "none"
        return answer

    ask.questions = questions  # type: ignore[attr-defined]
    return ask


def console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=200), buf


def test_all_pushes_every_record_then_donation_message_once(fresh_server: Server, tmp_path: Path) -> None:
    config = UserConfig(server=fresh_server.url)
    out = tmp_path / "gen.jsonl"
    out.write_text("local data\n", encoding="utf-8")
    con, buf = console()
    ask = scripted("all")
    assert offer_contribution(out, records(6), config, con, ask, never_asked) == "pushed"
    assert fresh_server.count("pending") == 6
    assert "6 sent for review" in buf.getvalue()
    assert "shown once" in buf.getvalue() and marker_path().exists()
    assert fresh_server.url in ask.questions[0]

    con2, buf2 = console()
    assert offer_contribution(out, records(6), config, con2, scripted("all"), never_asked) == "pushed"
    assert "0 sent for review, 6 already known" in buf2.getvalue()
    assert "shown once" not in buf2.getvalue()  # the donation message appears only the first time
    assert out.read_text(encoding="utf-8") == "local data\n"


def test_sample_pushes_the_chosen_number(fresh_server: Server, tmp_path: Path) -> None:
    con, _ = console()
    result = offer_contribution(
        tmp_path / "gen.jsonl", records(10), UserConfig(server=fresh_server.url), con, scripted("sample"),
        lambda question, default: 3,
    )  # fmt: skip
    assert result == "pushed"
    assert fresh_server.count("pending") == 3


def test_none_sends_nothing_but_still_shows_the_donation_message(
    fresh_server: Server, tmp_path: Path
) -> None:
    con, buf = console()
    result = offer_contribution(
        tmp_path / "gen.jsonl",
        records(4),
        UserConfig(server=fresh_server.url),
        con,
        scripted("none"),
        never_asked,
    )
    assert result == "declined" and fresh_server.count() == 0
    assert "shown once" in buf.getvalue()


@pytest.mark.parametrize(
    "config",
    [UserConfig(server=None), UserConfig(server="http://127.0.0.1:9", contribute="never")],
    ids=["no-server-configured", "contribute-never"],
)
def test_not_asked_without_server_or_when_user_said_never(config: UserConfig, tmp_path: Path) -> None:
    con, buf = console()
    assert (
        offer_contribution(tmp_path / "g.jsonl", records(2), config, con, never_asked, never_asked)
        == "skipped"
    )
    assert buf.getvalue() == "" and not marker_path().exists()


def test_donation_message_can_be_switched_off(fresh_server: Server, tmp_path: Path) -> None:
    con, buf = console()
    config = UserConfig(server=fresh_server.url, donation_message=False)
    offer_contribution(tmp_path / "g.jsonl", records(2), config, con, scripted("none"), never_asked)
    assert "shown once" not in buf.getvalue() and not marker_path().exists()


def test_unreachable_server_is_reported_and_local_data_untouched(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    out = tmp_path / "gen.jsonl"
    out.write_text("precious\n", encoding="utf-8")
    con, buf = console()
    result = offer_contribution(out, records(3), UserConfig(server=url), con, scripted("all"), never_asked)
    assert result == "unreachable"
    text = " ".join(buf.getvalue().split())  # undo the console's line wrapping
    assert "could not contribute" in text and "cannot reach" in text and f"vdata push {out}" in text
    assert out.read_text(encoding="utf-8") == "precious\n"


def test_non_interactive_run_never_asks_or_connects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pytest's stdin is not a terminal; a configured but dead server must not even be contacted.
    monkeypatch.setenv("VDATA_SERVER", "http://127.0.0.1:9")
    monkeypatch.setenv("VDATA_CONTRIBUTE", "ask")
    out = tmp_path / "g.jsonl"
    write_records(records(2), out)
    started = time.monotonic()
    assert after_generation(out, quiet=False) == "skipped"
    assert time.monotonic() - started < 1.0 and not marker_path().exists()


def _run_in_terminal(code: str, env: dict[str, str], answer: str | None, timeout: float = 60) -> str:
    """Run python code with stdin/stdout on a pseudo-terminal, answering the first prompt with `answer`."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=follower, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    output = b""
    answered = answer is None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if not answered and b"[all/none/sample]" in output:
                os.write(leader, answer.encode() + b"\n")
                answered = True
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(leader)
    return output.decode("utf-8", "replace")


@pytest.mark.parametrize("quiet", [False, True], ids=["interactive", "quiet"])
def test_real_terminal_prompt_and_quiet(fresh_server: Server, tmp_path: Path, quiet: bool) -> None:
    code = (
        "from pathlib import Path\n"
        "from vdata.core.io import write_records\n"
        "from vdata.core.records import Record\n"
        "from vdata.server.contribute import after_generation\n"
        "rs = [Record(text=f'Terminal sentence {i} about engineers.', category='gender') for i in range(4)]\n"
        f"out = Path({str(tmp_path / 'g.jsonl')!r})\n"
        "write_records(rs, out)\n"
        f"after_generation(out, quiet={quiet})\n"
        "print('DONE')\n"
    )
    env = {
        **os.environ,
        "VDATA_SERVER": fresh_server.url,
        "VDATA_CONTRIBUTE": "ask",
        "VDATA_HOME": str(tmp_path / "home"),
        "VDATA_CONFIG": str(tmp_path / "none.toml"),
        "TERM": "dumb",
    }
    output = _run_in_terminal(code, env, None if quiet else "all")
    assert "DONE" in output, output
    if quiet:
        assert "Contribute" not in output and fresh_server.count() == 0
    else:
        assert "Contribute these 4 records" in output and "4 sent for review" in output, output
        assert fresh_server.count("pending") == 4
