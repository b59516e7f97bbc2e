"""The safe output writer (errortaxa.engine.outputs) on every kind of path, and the CLI through it.

The FIFO, symbolic links and the character device (a null device node made with mknod, as root)
all live in the test's temporary folder; no test writes to a node in /dev.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from errortaxa.engine.outputs import open_binary, open_text, resolve_links, write_text, writes_in_place

ROOT = Path(__file__).resolve().parents[1]
EXE = shutil.which("errortaxa", path=str(Path(sys.executable).parent)) or "errortaxa"
RECORDS = [
    {"id": "a", "image": "x1.JPEG", "target": 207, "labels": [207], "pred": 207},
    {"id": "b", "image": "x2.JPEG", "target": 250, "labels": [250], "pred": 248},
]
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def null_device(path: Path) -> Path:
    """A character device node like /dev/null (major 1, minor 3), made in the test's folder."""
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return path


def test_a_new_regular_file_is_written_and_no_temporary_file_stays(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    assert not writes_in_place(target)
    write_text(target, "hello\n")
    assert target.read_text() == "hello\n"
    assert leftovers(tmp_path) == []


def test_an_existing_file_is_replaced_by_rename_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    target.chmod(0o640)
    before = target.stat().st_ino
    with open_text(target) as stream:
        stream.write("new\n")
        # the old file is intact until the block ends; the new text goes to a temporary file beside it
        assert target.read_text() == "old\n"
        assert len(leftovers(tmp_path)) == 1
    assert target.read_text() == "new\n"
    assert target.stat().st_ino != before  # renamed over, not written in place
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []


@root_only
def test_a_replaced_file_keeps_its_owner_when_root_writes_it(tmp_path: Path) -> None:
    target = tmp_path / "theirs.txt"
    target.write_text("old\n")
    os.chown(target, 4321, 4321)
    write_text(target, "new\n")
    assert (target.stat().st_uid, target.stat().st_gid) == (4321, 4321) and target.read_text() == "new\n"


def test_an_error_while_writing_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), open_text(target) as stream:
        stream.write("torn")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert leftovers(tmp_path) == []


def test_a_symlink_is_followed_its_target_replaced_and_the_link_kept(tmp_path: Path) -> None:
    real_dir, link_dir = tmp_path / "real", tmp_path / "links"
    real_dir.mkdir()
    link_dir.mkdir()
    target = real_dir / "data.jsonl"
    target.write_text("old\n")
    first = link_dir / "first"
    first.symlink_to("../real/data.jsonl")  # relative, counted from the link's folder
    second = link_dir / "second"
    second.symlink_to(first)  # a chain of two links
    assert resolve_links(second) == (target, False)
    before = target.stat().st_ino
    write_text(second, "new\n")
    assert second.is_symlink() and first.is_symlink()
    assert os.readlink(first) == "../real/data.jsonl"
    assert target.read_text() == "new\n" and target.stat().st_ino != before
    assert leftovers(real_dir) == [] and leftovers(link_dir) == []


def test_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "made.txt")
    write_text(link, "x")
    assert link.is_symlink() and (tmp_path / "made.txt").read_text() == "x"


def test_a_fifo_is_written_directly(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    assert writes_in_place(fifo)
    with open_binary(fifo) as stream:
        stream.write(b"through the pipe\n")
    reader.join(10)
    assert got == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert leftovers(tmp_path) == []


@root_only
def test_a_character_device_is_written_directly_and_stays_a_device(tmp_path: Path) -> None:
    device = null_device(tmp_path / "null")
    assert writes_in_place(device)
    write_text(device, "discarded\n")
    mode = os.lstat(device).st_mode
    assert stat.S_ISCHR(mode) and os.lstat(device).st_rdev == os.makedev(1, 3)
    assert leftovers(tmp_path) == []


@root_only
def test_a_symlink_to_a_character_device_keeps_both(tmp_path: Path) -> None:
    device = null_device(tmp_path / "null")
    link = tmp_path / "out.jsonl"
    link.symlink_to(device)
    write_text(link, "discarded\n")
    assert link.is_symlink() and stat.S_ISCHR(os.lstat(device).st_mode)


def test_dev_and_proc_paths_are_written_in_place_by_name(tmp_path: Path) -> None:
    # only decided here, nothing is written: /dev/stdout and /dev/null are never renamed over, even
    # when standard output is a regular file; so is a link of ours that leads into /dev
    assert writes_in_place("/dev/stdout") and writes_in_place("/dev/null") and writes_in_place("-")
    assert writes_in_place(f"/proc/self/fd/{sys.stderr.fileno()}")
    link = tmp_path / "to-stdout"
    link.symlink_to("/dev/stdout")
    assert writes_in_place(link)
    assert resolve_links(link)[1]


def test_a_folder_is_refused_by_the_open(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        write_text(tmp_path, "x")
    assert leftovers(tmp_path) == []


def test_a_missing_folder_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        write_text(tmp_path / "no" / "out.txt", "x")
    assert caught.value.filename == str(tmp_path / "no")


def test_dash_is_standard_output(capsys: pytest.CaptureFixture[str]) -> None:
    write_text("-", "on stdout\n")
    assert capsys.readouterr().out == "on stdout\n"


# --- the CLI through the writer ------------------------------------------------------------------

def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300, input=stdin)


def jsonl(records: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def test_classify_reads_dash_as_stdin_and_writes_dash_as_stdout(tmp_path: Path) -> None:
    p = run("classify", "-", "--output", "-", "--summary", str(tmp_path / "summary.json"), stdin=jsonl(RECORDS))
    assert p.returncode == 0, p.stderr
    assert [json.loads(line)["id"] for line in p.stdout.splitlines()] == ["a", "b"]
    assert not (Path.cwd() / "-").exists()
    assert json.loads((tmp_path / "summary.json").read_text())["headline"]["samples"] == 2


def test_classify_output_through_a_symlink_and_a_fifo(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(jsonl(RECORDS))
    (tmp_path / "runs").mkdir()
    real = tmp_path / "runs" / "out.jsonl"
    real.write_text("old\n")
    link = tmp_path / "latest.jsonl"
    link.symlink_to(real)
    fifo = tmp_path / "summary.fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    p = run("classify", str(inp), "--output", str(link), "--summary", str(fifo))
    reader.join(60)
    assert p.returncode == 0, p.stderr
    assert link.is_symlink() and len(real.read_text().splitlines()) == 2
    assert json.loads(got[0])["headline"]["samples"] == 2
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@root_only
def test_classify_output_to_a_device_node_as_root(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(jsonl(RECORDS))
    device = null_device(tmp_path / "null")
    p = run("classify", str(inp), "--output", str(device), "--summary", str(device))
    assert p.returncode == 0, p.stderr
    assert stat.S_ISCHR(os.lstat(device).st_mode) and leftovers(tmp_path) == []


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for process substitution")
def test_classify_output_to_a_process_substitution(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(jsonl(RECORDS))
    gz = tmp_path / "out.jsonl.gz"
    script = f'"{EXE}" classify "{inp}" --output >(gzip > "{gz}"); status=$?; wait $!; exit $status'
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert [json.loads(line)["id"] for line in gzip.decompress(gz.read_bytes()).decode().splitlines()] == ["a", "b"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for process substitution")
def test_classify_reads_a_pipe_once_for_detection_and_reading(tmp_path: Path) -> None:
    gz = tmp_path / "in.jsonl.gz"
    gz.write_bytes(gzip.compress(jsonl(RECORDS).encode()))
    p = subprocess.run(["bash", "-c", f'"{EXE}" classify <(gzip -dc "{gz}")'], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert [json.loads(line)["id"] for line in p.stdout.splitlines()] == ["a", "b"]


def test_classify_output_to_a_folder_is_one_line(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(jsonl(RECORDS))
    p = run("classify", str(inp), "--output", str(tmp_path))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Is a directory" in p.stderr
