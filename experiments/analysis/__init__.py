"""Reading back: the runs as one DataFrame (readback: settings, goals, budgets, curves), reports
(report; degenerate runs flagged in degenerate, figures in report_plots), the results page
(results_page; its claims and tests in verdicts and stats, provenance and the per-run CSV in
provenance, figures in page_plots, the runs export reader in export), tuning reports, gradient
flow."""
