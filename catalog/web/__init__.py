"""The `catalog serve` web gallery: search, media, statistics and failures over the read API."""
