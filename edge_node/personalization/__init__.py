"""Personalization: profiles, decisions, ranking, cohorts, trigger rules and experiments."""
