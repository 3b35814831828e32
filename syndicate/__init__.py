"""syndicate: a newsletter and content-syndication pipeline for a corpus of case studies.

The public API is re-exported here; modules and names starting with ``_`` are internal.
The publishing API (``publish``, ``Ledger``, ``import_pages``...) and the config and corpus
models are loaded on first use, so that a quick command such as ``syndicate corpus list``
does not import the renderers, and ``syndicate --help`` not even pydantic.

    import syndicate
    config = syndicate.load_config("config/syndicate.toml")
    result = syndicate.publish(config)          # the next case study, every channel
    print(result.summary())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    AlreadyPublished,
    ChannelError,
    ConfigError,
    CorpusError,
    ExpiredToken,
    IngestError,
    InvalidAddress,
    InvalidToken,
    LedgerError,
    LockedError,
    NothingToPublish,
    RenderError,
    SlotTaken,
    SubscriberExists,
    SyndicateError,
)
from .modules import lazy_attribute

if TYPE_CHECKING:
    from .app import load_config
    from .channels import (
        Bookkeeping,
        Channel,
        ChannelSettings,
        DeliveryJob,
        DeliveryReport,
        register_channel,
    )
    from .config import Config
    from .corpus import CaseStudy, Corpus, Section, Source
    from .ingest import import_pages
    from .ledger import Delivery, Edition, Ledger, LedgerPort, Subscriber, open_ledger
    from .pipeline import Preview, Publisher, PublishResult, preview, publish, resume
    from .related import RelatednessIndex, build_index
    from .render import EditionView

# name -> module holding it, imported on first attribute access (PEP 562)
# (the config and the corpus too: pydantic's model building is not free, and ``--help``
# needs neither)
_LAZY = {
    "load_config": "app",
    "Config": "config",
    "CaseStudy": "corpus", "Corpus": "corpus", "Section": "corpus", "Source": "corpus",
    "Bookkeeping": "channels", "Channel": "channels", "ChannelSettings": "channels",
    "DeliveryJob": "channels", "DeliveryReport": "channels", "register_channel": "channels",
    "import_pages": "ingest",
    "Delivery": "ledger", "Edition": "ledger", "Ledger": "ledger", "Subscriber": "ledger",
    "LedgerPort": "ledger", "open_ledger": "ledger",
    "Preview": "pipeline", "Publisher": "pipeline",
    "PublishResult": "pipeline", "preview": "pipeline", "publish": "pipeline",
    "resume": "pipeline",
    "RelatednessIndex": "related", "build_index": "related",
    "EditionView": "render",
}


def __getattr__(name: str) -> Any:
    return lazy_attribute(globals(), _LAZY, name)


__all__ = [
    "AlreadyPublished",
    "Bookkeeping",
    "CaseStudy",
    "Channel",
    "ChannelError",
    "ChannelSettings",
    "Config",
    "ConfigError",
    "Corpus",
    "CorpusError",
    "Delivery",
    "DeliveryJob",
    "DeliveryReport",
    "Edition",
    "EditionView",
    "ExpiredToken",
    "IngestError",
    "InvalidAddress",
    "InvalidToken",
    "Ledger",
    "LedgerError",
    "LedgerPort",
    "LockedError",
    "NothingToPublish",
    "Preview",
    "PublishResult",
    "Publisher",
    "RelatednessIndex",
    "RenderError",
    "Section",
    "SlotTaken",
    "Source",
    "Subscriber",
    "SubscriberExists",
    "SyndicateError",
    "build_index",
    "import_pages",
    "load_config",
    "open_ledger",
    "preview",
    "publish",
    "register_channel",
    "resume",
]
