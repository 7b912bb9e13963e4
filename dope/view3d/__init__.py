"""The 3D view: the scene, the built-in and visvis renderers, and the choice between them."""
