"""Alert delivery: the Server-Sent Events stream and signed webhooks (docs/webhooks.md)."""
