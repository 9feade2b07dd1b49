"""The datacatalog's gRPC edge: thin servicers, request validation and metrics."""
