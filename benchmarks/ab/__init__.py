"""The A/B benchmark: one dataset through the real proxy once per arm (policy x strategy), then a report.

`thinkgate bench ab --help` for usage; `benchmarks/README.md` for the command behind the shipped report.
"""
