"""Kubernetes components (MirrorMaker 2 against an existing cluster named in config)."""
