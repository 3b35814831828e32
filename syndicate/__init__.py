"""syndicate: a newsletter and content-syndication pipeline for a corpus of case studies.

The public API is re-exported here; modules and names starting with ``_`` are internal.
"""

from .config import Config, load_config
from .corpus import CaseStudy, Corpus, Section, Source
from .errors import (
    AlreadyPublished,
    ChannelError,
    ConfigError,
    CorpusError,
    IngestError,
    LedgerError,
    LockedError,
    NothingToPublish,
    RenderError,
    SlotTaken,
    SyndicateError,
)

__all__ = [
    "AlreadyPublished",
    "CaseStudy",
    "ChannelError",
    "Config",
    "ConfigError",
    "Corpus",
    "CorpusError",
    "IngestError",
    "LedgerError",
    "LockedError",
    "NothingToPublish",
    "RenderError",
    "Section",
    "SlotTaken",
    "Source",
    "SyndicateError",
    "load_config",
]
