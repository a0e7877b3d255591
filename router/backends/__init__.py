"""Upstreams: where a chat request goes after the decision. See `base.Backend` for the contract."""
