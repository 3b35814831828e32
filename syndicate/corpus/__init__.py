"""The corpus: one Markdown file with YAML front matter per case study.

File layout (``corpus/<slug>.md``)::

    ---
    slug: refuser-les-levees-de-fonds
    title: "Refuser les levées de fonds : stratégie d’indépendance…"
    position: 1            # queue order: lowest unpublished position goes next
    status: ready          # ready | draft (drafts are never published)
    companies: [The Green Data, Cozy Cloud]
    themes: [financement]
    source: {page: 000_2ed753a566ed84a8.txt, position: 1}
    content_hash: sha256:…  # hash of the text as imported (see ingest)
    ---

    The lede (chapô): every paragraph before the first heading.

    ## A section heading

    A paragraph of that section.

    ##

    A paragraph of an untitled section (an article whose page had no headings).

The body is *not* Markdown-rendered: paragraphs are plain text separated by
blank lines and ``## `` starts a section. Text is kept exactly (typographic
apostrophes, non-breaking spaces…) and escaped by the renderers, so an operator
can write ``<script>`` or ``{{ }}`` and readers see it as text.

The package: :mod:`._case` (the record, reading and writing a file, the folder), :mod:`._index`
(the on-disk corpus index, what makes loading 10,000 files cheap), :mod:`._load` (``check``,
``load``, ``queue``) and :mod:`._edits` (the console's queue edits).
"""

from dataclasses import replace

# The errors the functions below raise, importable from here as before the package.
from ..errors import CorpusChanged, CorpusError
from ._case import (
    STATUSES,
    CaseStudy,
    Section,
    Source,
    content_hash,
    corpus_files,
    dumps,
    load_file,
    save,
)
from ._edits import corpus_stamp, edit_queue, next_position, renumber
from ._index import CORPUS_INDEX_VERSION
from ._load import Corpus, check, checked, load, queue, queue_head, queue_values

__all__ = [
    "CORPUS_INDEX_VERSION",
    "STATUSES",
    "CaseStudy",
    "Corpus",
    "CorpusChanged",
    "CorpusError",
    "Section",
    "Source",
    "check",
    "checked",
    "content_hash",
    "corpus_files",
    "corpus_stamp",
    "dumps",
    "edit_queue",
    "load",
    "load_file",
    "next_position",
    "queue",
    "queue_head",
    "queue_values",
    "renumber",
    "replace",
    "save",
]
