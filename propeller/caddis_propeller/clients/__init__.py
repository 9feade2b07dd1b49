"""gRPC clients of the services propeller talks to: admin's EventService and the datacatalog."""
