"""admin's gRPC edge: thin servicers that decode, call one manager method, and encode."""
