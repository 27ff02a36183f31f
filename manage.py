#!/usr/bin/env python
import os
import sys

from taskcenter.bootstrap import prepare


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")
    prepare()  # var/, the secret key and the metrics directory, before the settings load
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
