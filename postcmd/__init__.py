"""Post commands (SPEC A9): a job's `command_pre` and `command_post`, and its blocks'.

They run as tasks of the system job's first block (`post_commands`, service
af_sysjob_postcmd_service) on the system-job executor, as events/ runs events and wol/ wakes:

- commands.py: what a job leaves to run (pure), how its tasks wait for its command_pre, and
  the job log's words for it; the scheduler's farm queues what it returns.
- executor.py: the executor's side: how a post-command task is run.
"""
