"""The HTTP service over the platform: ``asif serve`` runs it with uvicorn."""

from __future__ import annotations

from asif_platform.service.app import ServiceState, create_app
from asif_platform.service.problems import CODES, Problem, ServiceProblem

__all__ = ["CODES", "Problem", "ServiceProblem", "ServiceState", "create_app"]
