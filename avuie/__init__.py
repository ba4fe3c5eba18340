"""avuie."""
