"""Pulumi week stacks: typed settings, pure manifest plans per concern, and their ComponentResources."""
