"""The project's bottom layer: what every other package (engine, model, text, preprocess, feeders, tools) shares.

It imports nothing of the project, so any layer may use it: writing files whole, never onto an input, and reading
text (`files`), reading files without running code (`safe_load`), one-line user errors and work-dir locks
(`errors`), the command lines' parser (`arguments`), figures (`figures`), top-k accuracy (`scores`) and running a
command that can be stopped (`processes`).
"""
