"""The vocabulary every stage shares, knowing no layer kind: sizes, per-axis recipes, plain tables and
how they are drawn (rich only on first use), how results show themselves, format versions.
"""
