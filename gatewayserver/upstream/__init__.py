"""Where uplinks go: a Network Server over gRPC (`GsNs`), or JSON lines when none is configured."""
