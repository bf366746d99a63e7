"""What archsolve reads and writes: problem TOML (``problem``, docs/problems.md), encoder-mirroring
decoders (``encoder``) and saved designs (``saved``).
"""
