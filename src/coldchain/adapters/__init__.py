"""Adapters: one SDK per module, each implementing ports of :mod:`coldchain.core.ports`."""
