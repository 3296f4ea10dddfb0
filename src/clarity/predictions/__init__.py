"""Depression predictions served from a patient's stored actigraphy by the promoted model."""
