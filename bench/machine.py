"""The machine a benchmark ran on, for its record: timings depend on the CPU, so every record names it."""
import os
import platform


def cpu_name() -> str:
    "The CPU's model name (from /proc/cpuinfo on Linux, else what `platform` knows) and its core count."
    try:
        with open('/proc/cpuinfo') as f:
            name = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f'{name}, {os.cpu_count()} cores'
