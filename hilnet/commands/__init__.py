"""One module per CLI command. Each parses its options and calls one library function."""
