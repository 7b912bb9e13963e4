"""People over time and in camera space: tracks, smoothing, camera-space placement."""
