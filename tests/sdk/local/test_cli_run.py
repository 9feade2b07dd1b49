from __future__ import annotations

import json
import uuid
from pathlib import Path

from click.testing import CliRunner

from caddis._cli.main import cli

PROGRAM = '''
import dataclasses
import typing
from caddis import task, workflow
from caddis.types.file import FlyteFile


@dataclasses.dataclass
class Cfg:
    a: int
    names: typing.List[str]


@task
def combine(x: int, y: float, flag: bool, s: str, xs: typing.List[int], cfg: Cfg,
            path: FlyteFile, opt: int = 3) -> typing.Tuple[int, str]:
    with open(path) as fh:
        body = fh.read()
    total = x + int(y) + sum(xs) + cfg.a + opt + (1 if flag else 0)
    return total, s + body + ",".join(cfg.names)


@workflow
def wf(x: int, y: float, flag: bool, s: str, xs: typing.List[int], cfg: Cfg, path: FlyteFile,
       opt: int = 3) -> typing.Tuple[int, str]:
    """Adds things up.

    Args:
        x: The first number.
    """
    return combine(x=x, y=y, flag=flag, s=s, xs=xs, cfg=cfg, path=path, opt=opt)


@task
def boom(x: int) -> int:
    raise ValueError("no way")


@task(enable_deck=True)
def decked(x: int) -> int:
    return x + 1
'''


def program(tmp_path: Path) -> Path:
    path = tmp_path / f"prog_{uuid.uuid4().hex[:8]}.py"
    path.write_text(PROGRAM)
    (tmp_path / "in.txt").write_text("FILE")
    return path


ARGS = [
    "--x",
    "1",
    "--y",
    "2.5",
    "--flag",
    "true",
    "--s",
    "hi",
    "--xs",
    "[1,2]",
    "--cfg",
    '{"a": 10, "names": ["p", "q"]}',
]


def test_run_prints_outputs(tmp_path: Path) -> None:
    prog = program(tmp_path)
    r = CliRunner().invoke(cli, ["run", str(prog), "wf", *ARGS, "--path", str(tmp_path / "in.txt")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"o0": 20, "o1": "hiFILEp,q"}


def test_help_lists_inputs_types_and_defaults(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["run", str(program(tmp_path)), "wf", "--help"])
    assert r.exit_code == 0, r.output
    for text in (
        "--x",
        "The first number",
        "--xs",
        "JSON List[int]",
        "--path",
        "file path",
        "--opt",
        "[default: 3]",
        "[required]",
        "Adds things up",
    ):
        assert text in r.output


def test_missing_input_and_bad_value(tmp_path: Path) -> None:
    prog = program(tmp_path)
    r = CliRunner().invoke(cli, ["run", str(prog), "wf", "--x", "1"])
    assert r.exit_code != 0 and "--y <float>" in r.output
    r = CliRunner().invoke(cli, ["run", str(prog), "combine", "--x", "one"])
    assert r.exit_code != 0 and "cannot read 'one' as int" in r.output


def test_unknown_entity(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["run", str(program(tmp_path)), "nope"])
    assert r.exit_code != 0 and "no entity 'nope'" in r.output and "wf" in r.output


def test_failure_is_reported(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["run", str(program(tmp_path)), "boom", "--x", "1"])
    assert r.exit_code == 1
    assert "no way" in r.output and "boom" in r.output


def test_remote_without_services_says_how_to_reach_them(tmp_path: Path) -> None:
    # Nothing listens on a just-freed port: the message names the address and the ways out.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["run", "--remote", "--endpoint", f"127.0.0.1:{port}"]
    r = CliRunner().invoke(cli, [*args, str(program(tmp_path)), "boom", "--x", "1"])
    assert r.exit_code == 1
    assert f"127.0.0.1:{port}" in r.output and "caddis sandbox start" in r.output
    assert "not yet" not in r.output


def test_run_help_describes_the_remote_path() -> None:
    r = CliRunner().invoke(cli, ["run", "--help"])
    assert r.exit_code == 0
    for option in ("--remote", "--wait", "--endpoint"):
        assert option in r.output


def test_run_prints_deck_paths_on_stderr(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["run", str(program(tmp_path)), "decked", "--x", "1"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == 2  # stdout stays parseable
    pages = [line[len("deck: ") :] for line in r.stderr.splitlines() if line.startswith("deck: ")]
    assert len(pages) == 1 and pages[0].endswith("deck.html")
    assert "Inputs" in Path(pages[0]).read_text()
