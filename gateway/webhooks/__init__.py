"""Webhooks: queue events delivered to HTTP receivers (see ``gateway.webhooks.client``)."""

from gateway.webhooks.client import WebhookNotifier, signature

__all__ = ["WebhookNotifier", "signature"]
