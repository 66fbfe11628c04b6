"""RNN Cell Lab experiments, in rooms by concern: one run (config, run, tasks, guards,
distribution), orchestration (sweep plans, launching, tuning), recording (MLflow tags, store,
claims, recorder), analysis (reports, results page, gradients), serving (predict, the UI), and the
`rnnlab` command line (cli, console)."""
