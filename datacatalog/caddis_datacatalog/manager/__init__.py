"""The datacatalog's logic, between the rpc layer and the repository (no grpc, no SQLAlchemy)."""
