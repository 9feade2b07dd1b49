"""The gRPC edge of propeller: the PropellerService servicer (thin: decode, call, encode)."""
