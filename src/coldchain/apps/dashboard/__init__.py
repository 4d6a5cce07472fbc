"""The local operations dashboard: a JSON API and a page that polls it (no CDN, no fonts)."""
