"""Running the command line's job on a Ray cluster: images through Ray Data, videos one Ray task each."""
