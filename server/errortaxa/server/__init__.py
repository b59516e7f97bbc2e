"""The ErrorTaxa gRPC server."""
