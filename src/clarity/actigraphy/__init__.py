"""Actigraphy analytics: pure computation on activity counts (numpy and scipy only).

Nothing here imports the web or database layers. Modules: ``series`` (the epoch time series),
``readers`` (file formats), ``rhythm`` (rest-activity rhythm metrics), ``nonwear``.
"""
