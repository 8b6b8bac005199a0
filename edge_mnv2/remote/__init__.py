"""Devices reached through TVM RPC: addresses, server lifecycle, deadlines, and the remote model."""
