"""Shared code of ECS Scheduler: models, schedule parsing, configuration, stores and buses.

Imports neither process (webapi, scheduld); both import it.
"""
