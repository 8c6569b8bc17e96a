"""Output folders given as URLs: `--out s3://bucket/reports` (or gs://, file://, memory://, anything
fsspec knows; plain paths stay local and nothing here runs for them).

The compare works in a local staging folder (`staging_dir`: under the harness cache, named by a
hash of the URL), so every local guarantee holds unchanged there: the folder lock against a second
run on this machine, records written by atomic rename, temporary files of a killed run removed.
The URL receives finished files only:

- a cell's record is looked up locally, then at the URL (`RemoteOut.fetch`, from `Runner.cached`):
  a cell finished on any machine or Ray node that writes to the same URL is reused, never recomputed;
- each record is pushed to the URL as soon as it is written (`push`, from `Runner.save_record`), by
  the process that computed it: under the Ray executor the worker writes it into the staging folder
  of its own node and pushes it itself; the base model's retention figures likewise;
- at the end the run folder (report.html, report.md, report.json, records/, charts/) is pushed, and
  any record of the plan the URL lacks (a push that failed earlier) is pushed again.

A push is one whole-object write: a single put on object stores (atomic there: a reader sees the old
object or the new one), a temporary name renamed into place on filesystems where a put could be seen
half done (file:// and other non-object stores). A record that is nevertheless read half written (a
truncated or foreign object) fails JSON validation in `Runner.cached` and its cell is recomputed.

What a URL does not give: a lock. Two compares writing to the same URL at the same time from
different machines are not kept apart (the lock is per staging folder, so per machine); both may
compute the same cell; the records are identical by design apart from timing fields, and the last
write wins. Tuning studies (`--tune-trials`) and temporary files a killed push left at the URL
(`.<name>.<random>.tmp`, never read as records) stay where they are. fsspec and the store's
backend (s3fs, gcsfs...) are imported only when a URL is given.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.cache import atomic_write_text, stable_hash
from harness.core.errors import HarnessError
from harness.core.faults import kill_point

SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})
"""Stores whose single put replaces an object in one step; elsewhere a push writes a temporary
name and renames it."""


def is_url(value: object) -> bool:
    """`scheme://...` (a string only: a Path object is always local)."""
    return isinstance(value, str) and bool(SCHEME.match(value))


def staging_dir(url: str) -> Path:
    """The local folder a compare to `url` works in, on this machine (see the module docstring)."""
    from harness.core.cache import cache_root

    return cache_root() / "staging" / stable_hash(url.rstrip("/"))


@dataclass(frozen=True)
class RemoteOut:
    """The URL an output folder is mirrored to. Local paths map to the URL by their place under the
    staging folder, so the same object works on every node (each with its own staging folder)."""

    url: str

    @property
    def staging(self) -> Path:
        return staging_dir(self.url)

    def check(self) -> None:
        """Fail before anything runs when fsspec has no backend for the URL's scheme."""
        self._fs()

    def _fs(self) -> tuple[Any, str]:
        try:
            from fsspec.core import url_to_fs

            fs, root = url_to_fs(self.url)
        except (ImportError, ValueError) as e:  # fsspec names the package to install ("Please install gcsfs")
            raise HarnessError(f"--out {self.url}: {str(e).splitlines()[0]}") from None
        return fs, root.rstrip("/")

    def relative(self, local: Path) -> str:
        """`local`'s place under this machine's staging folder, as a URL path (posix)."""
        try:
            return local.resolve().relative_to(self.staging.resolve()).as_posix()
        except ValueError:
            raise HarnessError(f"{local} is not under the staging folder of {self.url}") from None

    def target(self, local: Path) -> str:
        """Where `local` lives at the URL (a path in the URL's filesystem)."""
        _, root = self._fs()
        return f"{root}/{self.relative(local)}"

    def push(self, local: Path) -> None:
        """Put one finished local file at the URL in one step (see ATOMIC_PUT)."""
        fs, root = self._fs()
        target = f"{root}/{self.relative(local)}"
        data = local.read_bytes()
        try:
            if _protocols(fs) & ATOMIC_PUT:
                fs.pipe_file(target, data)
                return
            parent, name = target.rsplit("/", 1)
            fs.makedirs(parent, exist_ok=True)
            tmp = f"{parent}/.{name}.{uuid.uuid4().hex[:12]}.tmp"
            try:
                fs.pipe_file(tmp, data)
                kill_point("remote-push")  # crash tests: a push cut short leaves only the temporary name
                fs.mv(tmp, target)
            except BaseException:
                _remove_quietly(fs, tmp)
                raise
        except OSError as e:
            raise HarnessError(f"cannot write {self.url}/{self.relative(local)}: {e}") from None

    def fetch(self, local: Path) -> bool:
        """Copy `local`'s counterpart from the URL into place (atomically); False when there is none.
        The caller validates what it reads, as for any local record."""
        fs, root = self._fs()
        rel = self.relative(local)
        try:
            data = fs.cat_file(f"{root}/{rel}")
        except FileNotFoundError:
            return False
        except OSError as e:
            raise HarnessError(f"cannot read {self.url}/{rel}: {e}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return False  # not a record of ours: treated as absent, the cell is recomputed
        atomic_write_text(local, text)
        return True

    def push_missing(self, files: Iterable[Path]) -> int:
        """Push each existing local file the URL lacks; how many were pushed."""
        fs, root = self._fs()
        n = 0
        for path in files:
            if path.is_file() and not fs.exists(f"{root}/{self.relative(path)}"):
                self.push(path)
                n += 1
        return n

    def push_tree(self, folder: Path) -> int:
        """Push every file under `folder` (a run folder), temporary files aside; how many."""
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        for path in files:
            self.push(path)
        return len(files)

    def display(self, local: Path) -> str:
        """`local` as the user should look for it: at the URL."""
        return f"{self.url.rstrip('/')}/{self.relative(local)}"


def _protocols(fs: Any) -> set[str]:
    proto = fs.protocol
    return {proto} if isinstance(proto, str) else set(proto)


def _remove_quietly(fs: Any, path: str) -> None:
    with contextlib.suppress(OSError, NotImplementedError):
        fs.rm_file(path)
