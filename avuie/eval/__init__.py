"""avuie/eval."""
