"""Consent: who may learn what, decided per field at the moment of disclosure."""
