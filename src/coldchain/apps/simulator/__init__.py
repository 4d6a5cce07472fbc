"""The device simulator: one device or thousands, in one thread."""
