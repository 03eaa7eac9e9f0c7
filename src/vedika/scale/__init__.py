"""What several instances share: the Redis-backed StreamHub, rate limits, stop signals."""
