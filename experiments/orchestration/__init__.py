"""Orchestration: sweep plans (plan), claiming and running them (launch), keras-tuner searches (tune)."""
