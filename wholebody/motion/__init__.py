"""People over time: tracks across frames, and smoothing of every tracked part."""
