"""Outbound channels: small classes behind one Protocol, found through entry points.

A channel type is a class with a ``type_name``, a pydantic ``Settings`` model (the
keys of its ``[[channels]]`` entry) and a ``deliver(job)`` method, declared in the
``syndicate.channels`` entry-point group: the built-ins exactly like a third-party
package's (docs/channels.md). The pipeline never names a channel type: it builds
whatever the config lists. Importing this package imports no channel type.
"""

from __future__ import annotations

from ._base import Channel, ChannelSettings, DeliveryJob, DeliveryReport
from ._bookkeeping import Bookkeeping, DeliveryRun, DeliveryStore
from ._breaker import pause_reason, resume_paused
from ._registry import (
    ChannelRegistry,
    build_channel,
    channel_registry,
    channel_settings_model,
    channel_settings_models,
    channel_types,
    register_channel,
)

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
    "pause_reason",
    "register_channel",
    "resume_paused",
]
