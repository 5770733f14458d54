"""The platform's CrossGuard policy pack: rules (pure, importable) and an offline runner.

Nothing here imports ``components``: the rules judge resources, whoever made them.
"""
