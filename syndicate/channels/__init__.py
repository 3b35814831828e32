"""Outbound channels: small classes behind one Protocol, registered by ``type`` name.

A channel type is a class with a ``type`` name, a pydantic ``Settings`` model
(the keys of its ``[[channels]]`` entry) and a ``deliver(job)`` method. The
pipeline never names a channel type: it builds whatever the config lists.
"""

from __future__ import annotations

from ._base import (
    Channel,
    ChannelSettings,
    DeliveryReport,
    build_channel,
    channel_settings_model,
    channel_types,
    register_channel,
)

__all__ = [
    "Channel",
    "ChannelSettings",
    "DeliveryReport",
    "build_channel",
    "channel_settings_model",
    "channel_types",
    "register_channel",
]
