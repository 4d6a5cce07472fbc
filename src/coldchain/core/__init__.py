"""The pure domain: readings, topics, excursion rules, processing and ports.

Nothing in this package performs I/O, reads the clock or the environment, or imports an
SDK (boto3, paho, sqlite3, click). A test imports it in a fresh interpreter to prove it.
"""
