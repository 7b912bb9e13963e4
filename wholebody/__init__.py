"""Supporting modules of DOPE (dope.py): inputs, network, post-processing, drawing, 3D view and outputs."""
