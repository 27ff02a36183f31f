#!/usr/bin/env python
import os
import sys

from taskcenter.bootstrap import prepare
from taskcenter.env import ConfigError


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")
    try:
        prepare()  # var/, the secret key and the metrics directory, before the settings load
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        # A setting the operator wrote wrongly: the message names the variable; a traceback adds nothing.
        sys.exit(f"configuration error: {exc}")


if __name__ == "__main__":
    main()
