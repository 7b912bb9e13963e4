"""Where data leaves: JSON Lines and annotated video writers."""
