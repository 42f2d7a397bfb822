"""Sharing and placing work on one GPU: MPS (d47), host placement (d53), utilisation vs batch (d54.e3),
allocator fragmentation (d59.e5). MIG (d48) is not run on lent machines: its layout must not change."""
