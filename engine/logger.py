"""The run's log: lines on the console and in <work_dir>/log.txt."""
import os
import sys
import time

from lstbase.files import unwritable


class Logger:
    """Log lines of the main process (other processes of a DDP run say nothing): each goes to the console and, with
    `to_file` (--print-log), to <work_dir>/log.txt. Lines logged before `open_file` wait for it, so that a run
    stopped by a bad input leaves no log behind."""

    def __init__(self, work_dir, enabled=True, to_file=True):
        self.path = os.path.join(work_dir, 'log.txt')
        self.enabled, self.to_file = enabled, to_file
        self.pending = []                               # None once the file is open

    def __call__(self, text, print_time=True):
        self.write(text, print_time, self.to_file)

    def console(self, text, print_time=True):
        """A line for the console alone (e.g. the best epoch's evaluation again, already in log.txt)."""
        self.write(text, print_time, to_file=False)

    def warning(self, text):
        """A legal but surprising input: a line `warning: <what, where>` on stderr, and in log.txt."""
        self.write(f'warning: {text}', False, self.to_file, sys.stderr)

    def write(self, text, print_time, to_file, stream=None):
        if not self.enabled:
            return
        if print_time:
            text = f'[ {time.asctime()} ] {text}'
        print(text, flush=True, file=stream or sys.stdout)
        if not to_file:
            return
        if self.pending is None:
            self.append([text])
        else:
            self.pending.append(text)

    def open_file(self):
        """From now on lines go to log.txt too, starting with those held back until the checks passed (the work dir
        is made here when the run's caller has not made it: engine.main makes it for the checks)."""
        pending, self.pending = self.pending, None
        if self.to_file and self.enabled:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self.append(pending)

    def append(self, lines):
        try:
            with open(self.path, 'a') as f:
                f.writelines(line + '\n' for line in lines)
        except OSError as exc:                                  # a full disk
            raise unwritable(self.path, exc) from None
