"""Where commands run: a Docker container (through the SDK) or this host."""
