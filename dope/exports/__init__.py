"""Files for animation and biomechanics: people of a clip as NPZ, C3D, BVH and glTF (GLB)."""
