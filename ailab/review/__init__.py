"""Week reviews and architecture diagrams, rendered from stored results and from the code's own definitions."""
