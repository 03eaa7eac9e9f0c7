"""Browser tests: the pages in a real Chromium (marked `browser`)."""
