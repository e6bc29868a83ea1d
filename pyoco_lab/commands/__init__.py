"""Subcommands of ``pyoco-lab``: each module defines ``register(subparsers)``.

Modules here parse arguments and print; the work is done by library functions elsewhere.
"""
