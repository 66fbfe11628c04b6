"""The one vocabulary of MLflow tag names the suite writes and reads (`rnnlab.*`).

Every module names a tag by its constant here, never as a raw "rnnlab.xxx" string, so a tag's
writers and readers are found by one grep and cannot drift apart. A search filter spells one as
f"tags.`{STATUS_TAG}` = 'FINISHED'"; a column of `mlflow.search_runs` as f"tags.{STATUS_TAG}".
"""

TAG_PREFIX = "rnnlab."

# what a run is
ROLE_TAG = f"{TAG_PREFIX}role"  # parent runs: "sweep", "tuning"; "gradients", "gradients-training"
TASK_TAG = f"{TAG_PREFIX}task"
CELL_TAG = f"{TAG_PREFIX}cell"
FAMILY_TAG = f"{TAG_PREFIX}family"
CONFIG_HASH_TAG = f"{TAG_PREFIX}config_hash"
# how it ended
STATUS_TAG = f"{TAG_PREFIX}status"  # RUNNING, FINISHED, SKIPPED, FAILED, KILLED
REASON_TAG = f"{TAG_PREFIX}reason"
ERROR_TAG = f"{TAG_PREFIX}error"
SOLVED_TAG = f"{TAG_PREFIX}solved"
RESUMED_FROM_TAG = f"{TAG_PREFIX}resumed_from"
RESUMED_EPOCH_TAG = f"{TAG_PREFIX}resumed_epoch"
# the task's goal, for the report
SOLVED_METRIC_TAG = f"{TAG_PREFIX}solved_metric"
SOLVED_THRESHOLD_TAG = f"{TAG_PREFIX}solved_threshold"
SOLVED_MODE_TAG = f"{TAG_PREFIX}solved_mode"
BASELINE_METRIC_TAG = f"{TAG_PREFIX}baseline_metric"
# where and on what it ran
BACKEND_TAG = f"{TAG_PREFIX}backend"
DEVICE_TAG = f"{TAG_PREFIX}device"
GIT_COMMIT_TAG = f"{TAG_PREFIX}git_commit"
DIRTY_TAG = f"{TAG_PREFIX}dirty"  # "true" when tracked files had uncommitted changes
VERSIONS_TAG = f"{TAG_PREFIX}versions"  # "python 3.11.9, rnn-cell-lab 0.1.0, keras 3.15.1, ..."
DISTRIBUTION_TAG = f"{TAG_PREFIX}distribution"
REPLICAS_TAG = f"{TAG_PREFIX}replicas"
# sweeps: the parent's name, file and size; a child's claim
SWEEP_TAG = f"{TAG_PREFIX}sweep"
SWEEP_FILE_TAG = f"{TAG_PREFIX}sweep_file"
SWEEP_RUNS_TAG = f"{TAG_PREFIX}sweep_runs"
SWEEP_ONLY_TAG = f"{TAG_PREFIX}sweep_only"  # `--only` filters of the latest launch ("" = all runs)
CLAIMED_BY_TAG = f"{TAG_PREFIX}claimed_by"
LEASE_TAG = f"{TAG_PREFIX}lease_until"
# who holds a claim or lease: host name, process id, and what tells that process from a later one
# with the same id (`claims.start_token`)
HOLDER_HOST_TAG = f"{TAG_PREFIX}holder_host"
HOLDER_PID_TAG = f"{TAG_PREFIX}holder_pid"
HOLDER_TOKEN_TAG = f"{TAG_PREFIX}holder_token"
# tunings: the parent's search, a trial's place in it, the best run per cell (BEST_RUN_TAG.<cell>)
TUNING_TAG = f"{TAG_PREFIX}tuning"
TUNER_TAG = f"{TAG_PREFIX}tuner"
OBJECTIVE_TAG = f"{TAG_PREFIX}objective"
DIRECTION_TAG = f"{TAG_PREFIX}direction"
SPACE_TAG = f"{TAG_PREFIX}space"
SPACE_FILE_TAG = f"{TAG_PREFIX}space_file"
CELLS_TAG = f"{TAG_PREFIX}cells"
TRIAL_ID_TAG = f"{TAG_PREFIX}trial_id"
TUNER_ID_TAG = f"{TAG_PREFIX}tuner_id"
TUNING_CELL_TAG = f"{TAG_PREFIX}tuning_cell"
BEST_RUN_TAG = f"{TAG_PREFIX}best_run"
# a runs export (experiments.analysis.export): where a run's params came from when the store that
# logged them is gone ("planned from <sweep file> at <commit>"); the package versions a run logged
PARAMS_SOURCE_TAG = f"{TAG_PREFIX}params_source"
VERSIONS_TAG = f"{TAG_PREFIX}versions"
