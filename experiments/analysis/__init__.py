"""Reading back: reports (report), the results page (results_page; its claims and tests in
verdicts and stats, provenance and the per-run CSV in provenance, figures in page_plots, the runs
export reader in export), tuning reports, gradient flow."""
