"""The 2D drawing of results over an image."""
