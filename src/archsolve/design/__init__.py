"""Designs: one layer's numbers (``layer``), steps and designs (``design``), the compact recipe
notation (``notation``), every single layer between two sizes (``explore``), the search-space
contract between the solver and the ranker (``search_space``), and the input checker every reader
of user values uses (``checks``).
"""
