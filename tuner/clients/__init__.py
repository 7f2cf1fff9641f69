"""The consumer clients the tuner measures: what each one calls a setting, and how it runs."""
