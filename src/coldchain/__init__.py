"""coldchain: cold chain and cargo monitoring over MQTT with mutual TLS."""

__version__ = "0.1.0"
