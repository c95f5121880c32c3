"""The folder walk: which prompt files exist, and a snapshot of what they hold.

Runs in a worker thread. A rescan re-parses only the files whose mtime, size or inode changed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from prompt_middleware.stores.local import dotprompt
from prompt_middleware.stores.local.index import Entry, index_files
from prompt_middleware.stores.local.parsing import (
    FileRecord,
    Invalid,
    Signature,
    Version,
    decode_json,
    decode_text,
    decode_yaml,
)
from prompt_middleware.stores.local.structured import parse_structured

_log = structlog.get_logger(__name__)

_SETTING = "PROMPT_MIDDLEWARE_PROMPTS_DIR"
_EXTENSIONS = (".yaml", ".yml", ".json", dotprompt.EXTENSION)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The folder as of one scan. Replaced whole, never mutated: lookups need no lock."""

    files: Mapping[str, FileRecord] = field(default_factory=dict)  # by relative path
    prompts: Mapping[str, Entry] = field(default_factory=dict)  # by prompt name
    # Problems between files (two files for one name or version), kept to log them once.
    problems: Mapping[str, str] = field(default_factory=dict)
    folder_error: str | None = None


def scan_folder(directory: Path, previous: Snapshot) -> Snapshot:
    """The folder now, re-using ``previous``'s parse of every file that did not change."""
    root = os.path.realpath(directory)
    reason: str | None = None
    if not os.path.exists(root):
        reason = "does not exist"
    elif not os.path.isdir(root):
        reason = "is not a folder"
    else:
        try:
            found = _walk(root)
        except OSError as exc:
            reason = f"cannot be read: {_os_reason(exc)}"
    if reason is not None:
        message = (
            f"the prompt folder '{directory}' {reason}; set {_SETTING} to a folder of prompt files"
        )
        if message != previous.folder_error:
            _log.warning("prompt_folder_unavailable", path=str(directory), reason=reason)
        return Snapshot(folder_error=message)

    files: dict[str, FileRecord] = {}
    for relative, (path, signature) in found.items():
        old = previous.files.get(relative)
        if old is not None and old.signature == signature:
            files[relative] = old
            continue
        record = load_file(path, relative, signature)
        if record is None:  # deleted since the walk
            continue
        if record.error is not None:
            _log.warning("prompt_file_invalid", path=relative, reason=record.error)
        files[relative] = record

    prompts, problems = index_files(files)
    for key, problem in problems.items():
        if previous.problems.get(key) != problem:
            _log.warning("prompt_file_invalid", path=key, reason=problem)
    return Snapshot(files=files, prompts=prompts, problems=problems)


def _walk(root: str) -> dict[str, tuple[str, Signature]]:
    """``{relative path: (path, signature)}`` of every prompt file below ``root``."""
    found: dict[str, tuple[str, Signature]] = {}
    # (directory path, its real path, relative prefix, real paths of it and its ancestors)
    pending: list[tuple[str, str, str, frozenset[str]]] = [("", root, "", frozenset({root}))]
    while pending:
        directory, real_directory, prefix, ancestors = pending.pop()
        try:
            entries = list(os.scandir(directory or root))
        except OSError:
            if not directory:
                raise
            continue  # an unreadable subfolder hides only its own prompts
        for entry in entries:
            if entry.name.startswith("."):
                continue
            relative = prefix + entry.name
            try:
                if entry.is_symlink():
                    real = os.path.realpath(entry.path)
                    # Never serve what a link leads to outside the folder.
                    if os.path.commonpath((real, root)) != root:
                        continue
                else:
                    real = os.path.join(real_directory, entry.name)
                if entry.is_dir():
                    if real not in ancestors:  # a link back up would loop forever
                        pending.append((entry.path, real, relative + "/", ancestors | {real}))
                    continue
                if not entry.is_file() or not entry.name.endswith(_EXTENSIONS):
                    continue
                stat = entry.stat()
            except OSError:
                continue  # vanished or dangling: as if it were not there
            found[relative] = (entry.path, (stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return found


def load_file(path: str, relative: str, seen: Signature) -> FileRecord | None:
    """The file at ``path`` parsed, or None if it is gone since the walk saw it."""
    stem, extension = os.path.splitext(relative)
    name, file_version = stem, None
    if extension == dotprompt.EXTENSION:
        match = dotprompt.VERSION_SUFFIX.fullmatch(stem)
        if match is not None:
            name, file_version = match["base"], int(match["version"])
    version_file = file_version is not None
    try:
        with open(path, "rb") as file:
            # The signature of what is read, not of what the walk saw a moment before.
            stat = os.fstat(file.fileno())
            data = file.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        # Keyed by what the walk saw, so that it is reported once, not on every scan.
        return FileRecord(seen, name, error=f"cannot be read: {_os_reason(exc)}")
    signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    try:
        if extension == dotprompt.EXTENSION:
            text = decode_text(data)
            versions: tuple[Version, ...] = (dotprompt.parse_dotprompt(text, file_version),)
        elif extension == ".json":
            versions = parse_structured(decode_json(data), name)
        else:
            versions = parse_structured(decode_yaml(data), name)
    except Invalid as exc:
        return FileRecord(signature, name, error=str(exc), version_file=version_file)
    return FileRecord(signature, name, versions, version_file=version_file)


def _os_reason(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else type(exc).__name__
