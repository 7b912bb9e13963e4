"""Where data enters: images, folders, videos and cameras; checkpoints and their download."""
