"""Outbound channels: small classes behind one Protocol, found through entry points.

A channel type is a class with a ``type_name``, a pydantic ``Settings`` model (the
keys of its ``[[channels]]`` entry) and a ``deliver(job)`` method, declared in the
``syndicate.channels`` entry-point group: the built-ins exactly like a third-party
package's (docs/channels.md). The pipeline never names a channel type: it builds
whatever the config lists. Importing this package imports no channel type.

Each name below is imported from its module on first use (PEP 562): ``status`` asks for
``pause_reason`` and ``edition_rates`` (the circuit breaker's ledger key and figures) and
must not pay for the channel Protocol, its pydantic settings and the delivery bookkeeping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..modules import lazy_attribute

if TYPE_CHECKING:
    from ._base import Channel, ChannelSettings, DeliveryJob, DeliveryReport
    from ._bookkeeping import Bookkeeping, DeliveryRun, DeliveryStore
    from ._breaker import edition_rates, pause_reason, resume_paused
    from ._registry import (
        ChannelRegistry,
        build_channel,
        channel_registry,
        channel_settings_model,
        channel_settings_models,
        channel_types,
        register_channel,
    )

# name -> the module of this package defining it
_LAZY = {
    "Channel": "_base", "ChannelSettings": "_base", "DeliveryJob": "_base",
    "DeliveryReport": "_base",
    "Bookkeeping": "_bookkeeping", "DeliveryRun": "_bookkeeping", "DeliveryStore": "_bookkeeping",
    "edition_rates": "_breaker", "pause_reason": "_breaker", "resume_paused": "_breaker",
    "ChannelRegistry": "_registry", "build_channel": "_registry",
    "channel_registry": "_registry", "channel_settings_model": "_registry",
    "channel_settings_models": "_registry", "channel_types": "_registry",
    "register_channel": "_registry",
}


def __getattr__(name: str) -> Any:
    # AttributeError for another name: also how `from syndicate.channels import smtp` finds
    # the module.
    return lazy_attribute(globals(), _LAZY, name)


__all__ = [
    "Bookkeeping",
    "Channel",
    "ChannelRegistry",
    "ChannelSettings",
    "DeliveryJob",
    "DeliveryReport",
    "DeliveryRun",
    "DeliveryStore",
    "build_channel",
    "channel_registry",
    "channel_settings_model",
    "channel_settings_models",
    "channel_types",
    "edition_rates",
    "pause_reason",
    "register_channel",
    "resume_paused",
]
