"""The link to the control plane: the Sync stream, protobuf conversion, model swaps."""
