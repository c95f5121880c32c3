"""The local prompt folder: one file per prompt, re-read when it changes.

A prompt's name is its path below the folder without the extension, with ``/`` separators
(``support/answer.yaml`` -> ``support/answer``). Files and folders whose name starts with
``.`` are ignored, and so are symlinks that lead outside the folder.

``.yaml`` / ``.yml`` / ``.json`` hold the fields of a Langfuse prompt::

    type: chat                  # text | chat; default: chat when 'prompt' is a list
    prompt:                     # a string for a text prompt
      - {role: system, content: "You answer questions about {{product}}."}
      - {type: placeholder, name: messages}
    config: {model: gpt-4o-mini, temperature: 0.2}   # any JSON value, default {}
    labels: [production]        # default: none
    version: 3                  # integer >= 1, default 1
    name: support/answer        # optional; must match the file's path

or several versions of one prompt, as ``{name: ..., versions: [<version>, ...]}`` or as a
top-level list of versions; each version then needs its ``version``. Langfuse's bookkeeping
fields (``tags``, ``commitMessage``, ``createdAt``, ...) are accepted and ignored, so a prompt
copied from Langfuse's API loads unchanged; any other unknown field is an error.

``.prompt`` files are LiteLLM's dotprompt files: optional YAML front matter between ``---``
lines, then the template. Front-matter keys become the prompt's config (``model``,
``temperature``, ...) except ``labels`` and ``version`` (this store's metadata) and ``input`` /
``output`` (dotprompt's schemas). A body with ``System:`` / ``User:`` / ``Assistant:`` markers
(any case) at line starts is a chat prompt: each message runs to the next marker, text before
the first marker is a user message, as in LiteLLM, and a marker with no text adds no message.
Otherwise the stripped body is a text prompt. The body is a Jinja template, as in LiteLLM
(:mod:`prompt_middleware.jinja`): one with logic is compiled here, once per file version, and
its roles are found when it is rendered; one whose only Jinja is ``{{variable}}`` is split now
and filled by the plain substitution (an unknown variable written as nothing, as Jinja does).
A body that does not compile makes the file invalid, naming the line. ``input.schema`` is read
here (:mod:`prompt_middleware.input_schema`) and checked on every render. Front matter without
a body is a prompt of settings only: one ``messages`` placeholder, filled by the client's.

As in LiteLLM, ``name.v2.prompt`` is version 2 of ``name``, and ``prompt_id="name.v2"`` selects
it whatever the label asked for; a ``name.prompt`` beside such files, without its own
``version``, is numbered above them, so it stays what a request without a version gets.

Versions and labels. ``latest`` is always the highest version (a ``latest`` written in a file
is ignored). A prompt whose files carry no labels at all serves its highest version as
``production``. When several versions claim one label, the highest of them has it.

Two files that give one name (``a.yaml`` and ``a.json``), or one version, make that prompt
unavailable until one goes. A broken file is logged once per change (``prompt_file_invalid``)
and makes only its own prompt unavailable.

Files are re-read without a restart: a request ``poll_interval`` seconds or more after the last
scan triggers a rescan in a worker thread that re-parses only the files whose mtime, size or
inode changed.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias

import msgspec
import structlog
import yaml
from msgspec import UNSET, UnsetType

from prompt_middleware.errors import InvalidPromptRequest, PromptNotFound, PromptStoreUnavailable
from prompt_middleware.input_schema import InputSchema, SchemaInvalid
from prompt_middleware.jinja import JinjaTemplate, TemplateInvalid, compile_jinja, is_plain
from prompt_middleware.prompts import (
    ChatMessage,
    Placeholder,
    Prompt,
    PromptMessage,
    PromptQuery,
    PromptType,
    TemplateLanguage,
)
from prompt_middleware.roles import ROLE_MARKER, role_sections

__all__ = ["LocalPromptStore"]

_log = structlog.get_logger(__name__)

_SETTING = "PROMPT_MIDDLEWARE_PROMPTS_DIR"
_DOTPROMPT_EXTENSION = ".prompt"
_EXTENSIONS = (".yaml", ".yml", ".json", _DOTPROMPT_EXTENSION)
# LiteLLM's versioned dotprompt files: ``name.v2.prompt`` (and ``prompt_id="name.v2"``).
_VERSION_SUFFIX = re.compile(r"(?P<base>.+)\.v(?P<version>[1-9][0-9]*)")
_FRONT_MATTER_FENCE = "---"
# Front-matter keys that describe the file rather than the request.
_NOT_CONFIG = frozenset({"labels", "version", "input", "output"})
# Langfuse's bookkeeping fields: accepted so an exported prompt loads, otherwise unused.
_LANGFUSE_BOOKKEEPING = frozenset(
    {
        "id",
        "projectId",
        "createdAt",
        "updatedAt",
        "createdBy",
        "isActive",
        "tags",
        "commitMessage",
        "resolutionGraph",
    }
)
_Signature: TypeAlias = tuple[int, int, int]  # mtime_ns, size, inode


# -- what the files may hold --------------------------------------------------------------


class _VersionFields(msgspec.Struct, forbid_unknown_fields=True):
    prompt: str | list[Any]
    name: str | UnsetType = UNSET
    type: Literal["text", "chat"] | UnsetType = UNSET
    config: Any = None
    labels: list[str] | None = None
    version: Annotated[int, msgspec.Meta(ge=1)] | UnsetType = UNSET


class _VersionsFile(msgspec.Struct, forbid_unknown_fields=True):
    versions: list[Any]
    name: str | UnsetType = UNSET
    tags: Any = None


class _MessageFields(msgspec.Struct, forbid_unknown_fields=True):
    role: str
    content: str
    type: Literal["chatmessage"] | None = None


class _PlaceholderFields(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["placeholder"]
    name: str


class _FrontMatterMeta(msgspec.Struct):
    labels: list[str] | None = None
    version: Annotated[int, msgspec.Meta(ge=1)] | UnsetType = UNSET


class _Invalid(Exception):
    """A file cannot be served; the message says why, without the file's path."""


# -- the index ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Version:
    number: int | None  # None: a base .prompt file numbered from its versioned siblings
    type: PromptType
    prompt: str | tuple[PromptMessage, ...]
    config: Any
    labels: tuple[str, ...]
    language: TemplateLanguage = "langfuse"
    template: JinjaTemplate | None = None  # a .prompt body with Jinja logic, compiled
    input_schema: InputSchema | None = None


@dataclass(frozen=True, slots=True)
class _FileRecord:
    signature: _Signature
    name: str
    versions: tuple[_Version, ...] = ()
    error: str | None = None
    version_file: bool = False  # ``name.vN.prompt``


@dataclass(frozen=True, slots=True)
class _Versions:
    by_number: Mapping[int, Prompt]
    by_label: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class _Broken:
    reason: str


_Entry: TypeAlias = _Versions | _Broken


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The folder as of one scan. Replaced whole, never mutated: lookups need no lock."""

    files: Mapping[str, _FileRecord] = field(default_factory=dict)  # by relative path
    prompts: Mapping[str, _Entry] = field(default_factory=dict)  # by prompt name
    # Problems between files (two files for one name or version), kept to log them once.
    problems: Mapping[str, str] = field(default_factory=dict)
    folder_error: str | None = None


# -- the store ----------------------------------------------------------------------------


class LocalPromptStore:
    """Prompts from a folder of ``.yaml``, ``.yml``, ``.json`` and ``.prompt`` files."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        poll_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if poll_interval < 0:
            raise ValueError(f"poll_interval must be >= 0, got {poll_interval!r}")
        self._directory = Path(directory)
        self._poll_interval = poll_interval
        self._clock = clock
        self._snapshot = _Snapshot()
        self._scanned_at: float | None = None
        self._scan_task: asyncio.Task[None] | None = None

    async def get_prompt(self, query: PromptQuery) -> Prompt:
        """The version of the prompt that ``query`` names, as of at most ``poll_interval`` ago."""
        _check_name(query.name)
        await self._refresh_if_due()
        snapshot = self._snapshot
        if snapshot.folder_error is not None:
            raise PromptStoreUnavailable(snapshot.folder_error)
        return _lookup(snapshot.prompts, query)

    async def aclose(self) -> None:
        """Wait for a scan in flight, so that no worker outlives the store."""
        if self._scan_task is not None:
            await asyncio.gather(self._scan_task, return_exceptions=True)

    def check(self) -> dict[str, str]:
        """Scan the folder now, blocking, and return ``{prompt name: reason}`` of every prompt
        that cannot be served. For command-line tools; it leaves the store's index alone."""
        snapshot = _scan_folder(self._directory, _Snapshot())
        if snapshot.folder_error is not None:
            raise PromptStoreUnavailable(snapshot.folder_error)
        return {
            name: entry.reason
            for name, entry in sorted(snapshot.prompts.items())
            if isinstance(entry, _Broken)
        }

    async def _refresh_if_due(self) -> None:
        task = self._scan_task
        if task is None:
            scanned_at = self._scanned_at
            if scanned_at is not None and self._clock() - scanned_at < self._poll_interval:
                return
            task = self._scan_task = asyncio.create_task(self._rescan())
        # Every caller waits on the one scan; shielded so that a caller that times out or
        # goes away does not cancel it for the others (its result is kept for the next call).
        await asyncio.shield(task)

    async def _rescan(self) -> None:
        started = self._clock()
        try:
            # Walking and parsing touch the disk: keep them off the event loop.
            self._snapshot = await asyncio.to_thread(_scan_folder, self._directory, self._snapshot)
            self._scanned_at = started
        finally:
            self._scan_task = None


def _check_name(name: str) -> None:
    # Lookups never touch the disk with a requested name, but a name that could only mean
    # a path outside the folder is refused outright rather than reported as missing.
    reason: str | None = None
    if not name:
        reason = "it is empty"
    elif "\x00" in name:
        reason = "it contains a NUL character"
    elif "\\" in name:
        reason = "it contains a backslash; folders are separated by '/'"
    elif name.startswith("/"):
        reason = "it is an absolute path; names are relative to the prompt folder"
    elif ".." in name.split("/"):
        reason = "it contains a '..' segment"
    if reason is not None:
        raise InvalidPromptRequest(
            f"prompt_id {name!r} is not a valid prompt name: {reason}", param="prompt_id"
        )


def _lookup(prompts: Mapping[str, _Entry], query: PromptQuery) -> Prompt:
    name = query.name
    wanted_version = query.version
    entry = prompts.get(name)
    if entry is None:
        # LiteLLM addresses ``name.v2.prompt`` as prompt_id "name.v2", whatever the label
        # (the engine asks for ``production`` when the request names none).
        match = _VERSION_SUFFIX.fullmatch(name)
        if match is not None and match["base"] in prompts:
            named = int(match["version"])
            if wanted_version is None or wanted_version == named:
                name, wanted_version = match["base"], named
                entry = prompts[name]
    if entry is None:
        raise PromptNotFound(
            f"prompt {query.describe()} not found: the prompt folder has no "
            f"{name}.yaml, .yml, .json or .prompt file",
            param="prompt_id",
        )
    if isinstance(entry, _Broken):
        raise PromptStoreUnavailable(f"prompt '{name}' cannot be served: {entry.reason}")
    if wanted_version is not None:
        prompt = entry.by_number.get(wanted_version)
        if prompt is None:
            versions = ", ".join(str(number) for number in sorted(entry.by_number))
            raise PromptNotFound(
                f"prompt {query.describe()} not found; its versions are {versions}",
                param="prompt_version",
            )
        return prompt
    label = query.label or "production"
    number = entry.by_label.get(label)
    if number is None:
        labels = ", ".join(sorted(entry.by_label))
        raise PromptNotFound(
            f"prompt {query.describe()} not found; its labels are {labels}",
            param="prompt_label",
        )
    return entry.by_number[number]


# -- scanning (runs in a worker thread) ---------------------------------------------------


def _scan_folder(directory: Path, previous: _Snapshot) -> _Snapshot:
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
        return _Snapshot(folder_error=message)

    files: dict[str, _FileRecord] = {}
    for relative, (path, signature) in found.items():
        old = previous.files.get(relative)
        if old is not None and old.signature == signature:
            files[relative] = old
            continue
        record = _load_file(path, relative, signature)
        if record is None:  # deleted since the walk
            continue
        if record.error is not None:
            _log.warning("prompt_file_invalid", path=relative, reason=record.error)
        files[relative] = record

    prompts, problems = _index(files)
    for key, problem in problems.items():
        if previous.problems.get(key) != problem:
            _log.warning("prompt_file_invalid", path=key, reason=problem)
    return _Snapshot(files=files, prompts=prompts, problems=problems)


def _walk(root: str) -> dict[str, tuple[str, _Signature]]:
    """``{relative path: (path, signature)}`` of every prompt file below ``root``."""
    found: dict[str, tuple[str, _Signature]] = {}
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


def _load_file(path: str, relative: str, seen: _Signature) -> _FileRecord | None:
    stem, extension = os.path.splitext(relative)
    name, file_version = stem, None
    if extension == _DOTPROMPT_EXTENSION:
        match = _VERSION_SUFFIX.fullmatch(stem)
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
        return _FileRecord(seen, name, error=f"cannot be read: {_os_reason(exc)}")
    signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    try:
        if extension == _DOTPROMPT_EXTENSION:
            versions: tuple[_Version, ...] = (
                _parse_dotprompt(_decode(data), file_version, relative),
            )
        elif extension == ".json":
            versions = _parse_structured(_decode_json(data), name)
        else:
            versions = _parse_structured(_decode_yaml(data), name)
    except _Invalid as exc:
        return _FileRecord(signature, name, error=str(exc), version_file=version_file)
    return _FileRecord(signature, name, versions, version_file=version_file)


def _os_reason(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else type(exc).__name__


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Invalid(f"is not UTF-8 text (byte {exc.start})") from exc
    return text.replace("\r\n", "\n")


def _decode_json(data: bytes) -> Any:
    try:
        return msgspec.json.decode(data.removeprefix(b"\xef\xbb\xbf"))
    except msgspec.DecodeError as exc:
        raise _Invalid(f"is not valid JSON: {exc}") from exc


def _decode_yaml(data: bytes | str) -> Any:
    text = _decode(data) if isinstance(data, bytes) else data
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise _Invalid(f"is not valid YAML: {exc.problem}{where}") from exc
    except yaml.YAMLError as exc:
        raise _Invalid(f"is not valid YAML: {exc}") from exc


def _convert(value: Any, into: type[Any]) -> Any:
    try:
        return msgspec.convert(value, into)
    except msgspec.ValidationError as exc:
        raise _Invalid(_validation_reason(exc)) from exc


def _validation_reason(exc: msgspec.ValidationError) -> str:
    # "Expected `str`, got `int` - at `$.prompt`" -> "'prompt': expected `str`, got `int`"
    message = str(exc)
    match = re.fullmatch(r"(?P<what>.*) - at `\$\.?(?P<where>.*)`", message)
    if match is None or not match["where"]:
        return message[:1].lower() + message[1:]
    what = match["what"]
    return f"'{match['where']}': {what[:1].lower()}{what[1:]}"


def _json_value(value: Any) -> Any:
    # YAML has values JSON lacks (dates, non-string keys): normalise to what a request carries.
    try:
        return msgspec.json.decode(msgspec.json.encode(value))
    except (msgspec.EncodeError, TypeError) as exc:
        raise _Invalid(f"'config' is not a JSON value: {exc}") from exc


# -- YAML and JSON files ------------------------------------------------------------------


def _parse_structured(data: Any, name: str) -> tuple[_Version, ...]:
    if isinstance(data, dict) and "versions" in data:
        file_fields: _VersionsFile = _convert(data, _VersionsFile)
        _check_declared_name(file_fields.name, name)
        entries = file_fields.versions
    elif isinstance(data, list):
        entries = data
    elif isinstance(data, dict):
        return (_parse_version(data, name, several=False),)
    else:
        raise _Invalid(
            "must hold a prompt (a mapping with 'prompt'), a mapping with 'versions', "
            "or a list of versions"
        )
    if not entries:
        raise _Invalid("holds no versions")
    versions: list[_Version] = []
    for index, raw in enumerate(entries, start=1):
        number = raw.get("version") if isinstance(raw, dict) else None
        where = f"version {number}" if type(number) is int else f"version entry {index}"
        try:
            versions.append(_parse_version(raw, name, several=True))
        except _Invalid as exc:
            raise _Invalid(f"{where}: {exc}") from exc
    numbers = [version.number for version in versions]
    duplicates = sorted({n for n in numbers if n is not None and numbers.count(n) > 1})
    if duplicates:
        raise _Invalid(f"version {duplicates[0]} appears more than once")
    return tuple(versions)


def _parse_version(raw: Any, name: str, *, several: bool) -> _Version:
    if not isinstance(raw, dict):
        raise _Invalid(f"must be a mapping of prompt fields, got {_kind(raw)}")
    fields_: _VersionFields = _convert(
        {key: value for key, value in raw.items() if key not in _LANGFUSE_BOOKKEEPING},
        _VersionFields,
    )
    _check_declared_name(fields_.name, name)
    if isinstance(fields_.version, UnsetType):
        if several:
            raise _Invalid("'version' is required when a file holds several versions")
        number = 1
    else:
        number = fields_.version
    prompt_type: PromptType
    if isinstance(fields_.type, UnsetType):
        prompt_type = "chat" if isinstance(fields_.prompt, list) else "text"
    else:
        prompt_type = fields_.type
    prompt: str | tuple[PromptMessage, ...]
    if prompt_type == "chat":
        if not isinstance(fields_.prompt, list):
            raise _Invalid("'prompt' must be a list of messages for a chat prompt")
        prompt = _parse_messages(fields_.prompt)
    else:
        if not isinstance(fields_.prompt, str):
            raise _Invalid("'prompt' must be a string for a text prompt")
        prompt = fields_.prompt
    config = {} if fields_.config is None else _json_value(fields_.config)
    return _Version(number, prompt_type, prompt, config, tuple(fields_.labels or ()))


def _check_declared_name(declared: str | UnsetType, name: str) -> None:
    if not isinstance(declared, UnsetType) and declared != name:
        raise _Invalid(
            f"'name' is {declared!r} but the file's path makes it {name!r}; "
            f"rename the file or fix 'name'"
        )


def _parse_messages(items: list[Any]) -> tuple[PromptMessage, ...]:
    messages: list[PromptMessage] = []
    for index, item in enumerate(items, start=1):
        try:
            if not isinstance(item, dict):
                raise _Invalid(
                    f"must be a mapping with 'role' and 'content', or a placeholder "
                    f"{{type: placeholder, name: ...}}, got {_kind(item)}"
                )
            if item.get("type") == "placeholder":
                placeholder: _PlaceholderFields = _convert(item, _PlaceholderFields)
                messages.append(Placeholder(name=placeholder.name))
            else:
                message: _MessageFields = _convert(item, _MessageFields)
                messages.append(ChatMessage(role=message.role, content=message.content))
        except _Invalid as exc:
            raise _Invalid(f"'prompt' message {index}: {exc}") from exc
    return tuple(messages)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


# -- .prompt files ------------------------------------------------------------------------


def _parse_dotprompt(text: str, file_version: int | None, relative: str) -> _Version:
    front, body, first_line = _split_front_matter(text)
    meta: _FrontMatterMeta = _convert(
        {key: front[key] for key in ("labels", "version") if key in front}, _FrontMatterMeta
    )
    number: int | None = None
    if not isinstance(meta.version, UnsetType):
        number = meta.version
        if file_version is not None and number != file_version:
            raise _Invalid(
                f"the front matter says version {number} but the file name says "
                f"version {file_version}"
            )
    elif file_version is not None:
        number = file_version
    config = _json_value({key: value for key, value in front.items() if key not in _NOT_CONFIG})
    labels = tuple(meta.labels or ())
    schema = _input_schema(front)
    if not body.strip():
        # Front matter alone (model, parameters): the client's messages go as they are.
        return _Version(
            number, "chat", (Placeholder("messages"),), config, labels, "jinja", None, schema
        )
    if is_plain(body):
        # Nothing but {{variables}}: the plain substitution renders it as Jinja would.
        prompt = _parse_body(body)
        prompt_type: PromptType = "text" if isinstance(prompt, str) else "chat"
        return _Version(number, prompt_type, prompt, config, labels, "jinja", None, schema)
    try:
        template = compile_jinja(body, origin=relative, split_roles=True, first_line=first_line)
    except TemplateInvalid as exc:
        raise _Invalid(str(exc)) from exc
    # Roles are found when it is rendered; the source is kept as the prompt's text.
    prompt_type = "chat" if ROLE_MARKER.search(body) else "text"
    return _Version(number, prompt_type, body.strip(), config, labels, "jinja", template, schema)


def _input_schema(front: Mapping[str, Any]) -> InputSchema | None:
    declared = front.get("input")
    if not isinstance(declared, dict) or declared.get("schema") is None:
        return None
    try:
        return InputSchema.parse(declared["schema"])
    except SchemaInvalid as exc:
        raise _Invalid(str(exc)) from exc


def _split_front_matter(text: str) -> tuple[dict[str, Any], str, int]:
    """The front matter, the body, and the file line the body starts on."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != _FRONT_MATTER_FENCE:
        return {}, text, 1  # no front matter: the whole file is the template, as in LiteLLM
    for index in range(1, len(lines)):
        if lines[index].rstrip() == _FRONT_MATTER_FENCE:
            break
    else:
        raise _Invalid("the front matter opened by '---' on line 1 is never closed by '---'")
    try:
        front = _decode_yaml("".join(lines[1:index]))
    except _Invalid as exc:
        raise _Invalid(f"front matter {exc}") from exc
    if front is None:
        front = {}
    if not isinstance(front, dict) or not all(isinstance(key, str) for key in front):
        raise _Invalid("the front matter must be a YAML mapping of settings")
    return front, "".join(lines[index + 1 :]), index + 2


def _parse_body(body: str) -> str | tuple[PromptMessage, ...]:
    sections = role_sections(body)
    if sections is None:
        return body.strip()
    messages: list[PromptMessage] = []
    for role, start, end in sections:
        content = body[start:end].strip()
        if content:  # a marker with nothing after it adds no empty message
            messages.append(ChatMessage(role=role, content=content))
    if not messages:
        raise _Invalid("the role markers hold no text")
    return tuple(messages)


# -- from files to prompts ----------------------------------------------------------------


def _index(files: Mapping[str, _FileRecord]) -> tuple[dict[str, _Entry], dict[str, str]]:
    """Prompts by name, and the conflicts between files (keyed by their joined paths)."""
    groups: dict[str, list[tuple[str, _FileRecord]]] = {}
    for relative in sorted(files):
        record = files[relative]
        groups.setdefault(record.name, []).append((relative, record))
    prompts: dict[str, _Entry] = {}
    problems: dict[str, str] = {}
    for name, members in groups.items():
        errors = [f"{relative}: {record.error}" for relative, record in members if record.error]
        if errors:
            # Already logged when the file was read.
            prompts[name] = _Broken("; ".join(errors))
            continue
        try:
            prompts[name] = _resolve(name, members)
        except _Invalid as exc:
            key = ", ".join(relative for relative, _ in members)
            prompts[name] = _Broken(str(exc))
            problems[key] = str(exc)
    return prompts, problems


def _resolve(name: str, members: list[tuple[str, _FileRecord]]) -> _Versions:
    paths = [relative for relative, _ in members]
    bases = [relative for relative, record in members if not record.version_file]
    if len(bases) > 1 or (
        len(members) > 1 and not all(p.endswith(_DOTPROMPT_EXTENSION) for p in paths)
    ):
        raise _Invalid(
            f"{_join(paths)} all define prompt '{name}'; keep one file per prompt "
            f"(or name.vN.prompt files for versions)"
        )
    numbered = [
        (version.number, relative)
        for relative, record in members
        for version in record.versions
        if version.number is not None
    ]
    # A base .prompt without a version follows its versioned siblings, so that, as in
    # LiteLLM, it is what a request without a version gets.
    next_number = max((number for number, _ in numbered), default=0) + 1
    versions: dict[int, _Version] = {}
    origin: dict[int, str] = {}
    for relative, record in members:
        for version in record.versions:
            number = next_number if version.number is None else version.number
            if number in origin:
                raise _Invalid(
                    f"{_join([origin[number], relative])} both define version {number} "
                    f"of prompt '{name}'"
                )
            versions[number], origin[number] = version, relative
    return _assign_labels(name, versions)


def _assign_labels(name: str, versions: Mapping[int, _Version]) -> _Versions:
    latest = max(versions)
    by_label: dict[str, int] = {}
    for number in sorted(versions):  # ascending: the highest version claiming a label wins
        for label in versions[number].labels:
            if label != "latest":
                by_label[label] = number
    if not by_label:
        by_label["production"] = latest
    by_label["latest"] = latest
    labels_of: dict[int, list[str]] = {number: [] for number in versions}
    for label, number in by_label.items():
        labels_of[number].append(label)
    by_number = {
        number: Prompt(
            name=name,
            version=number,
            type=version.type,
            prompt=version.prompt,
            config=version.config,
            labels=tuple(labels_of[number]),
            template_language=version.language,
            template=version.template,
            input_schema=version.input_schema,
        )
        for number, version in versions.items()
    }
    return _Versions(by_number=by_number, by_label=by_label)


def _join(items: Iterable[str]) -> str:
    *head, last = items
    return f"{', '.join(head)} and {last}" if head else last
