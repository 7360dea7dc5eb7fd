"""Command-line programs: each module defines its flags and a `run()` used by the scripts and console entry points."""
