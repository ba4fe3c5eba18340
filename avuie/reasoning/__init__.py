"""avuie/reasoning."""
