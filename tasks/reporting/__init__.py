"""Analyst's reports: a self-contained HTML page of one subnet and block range (DESIGN.md §8, flow `report`)."""

from tasks.reporting.report import render_report

__all__ = ["render_report"]
