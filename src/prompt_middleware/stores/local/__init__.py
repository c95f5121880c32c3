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

The package, in the order a file travels: ``scan`` walks the folder and reads each changed
file, ``structured`` (YAML/JSON) or ``dotprompt`` (``.prompt``) parses it into versions
(``parsing`` holds what both share), ``index`` numbers the versions, assigns labels and answers
lookups, and ``store`` is the :class:`LocalPromptStore` that holds the latest snapshot.
"""

from prompt_middleware.stores.local.store import LocalPromptStore

__all__ = ["LocalPromptStore"]
