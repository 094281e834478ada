"""The gRPC API (docs/grpc.md): the Go server's services, wire-compatible, and this server's
additions, on the same operations as the HTTP API."""
