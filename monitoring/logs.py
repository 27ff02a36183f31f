"""Log formatting: one JSON object per line when LOG_JSON is on, secrets masked always."""

import json
import logging

from callbacks.masking import mask_text

# Attributes every LogRecord has; anything else was passed through `extra=` and is a field.
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class MaskSecretsFilter(logging.Filter):
    def filter(self, record):
        if record.args:
            try:
                record.msg = record.getMessage()
            except Exception:  # a broken format string is still logged, unformatted
                record.msg = str(record.msg)
            record.args = None
        record.msg = mask_text(str(record.msg))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
