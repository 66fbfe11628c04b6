"""Reading back: reports (report), the results page (results_page), tuning reports, gradient flow."""
