"""Analytics served over the API: actigraphy summaries and nights from stored wearable data."""
