"""Renderers: feeds (RSS, Atom, JSON Feed), the MJML email digest, archive pages.

Renderers are pure over :class:`~syndicate.render.model.EditionView` records
(built by the pipeline from the ledger, the corpus and relatedness) plus the
config; writing files is left to the channels.
"""

from ..text import company_slug
from .model import CompanyMention, EditionView, Link
from .urls import company_url, edition_url, feed_url

__all__ = [
    "CompanyMention",
    "EditionView",
    "Link",
    "company_slug",
    "company_url",
    "edition_url",
    "feed_url",
]
