"""Python client for the ErrorTaxa gRPC service."""
