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
        # Fields passed with extra= and tracebacks (an exception's text may carry a URL with a token).
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, mask_text(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
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
        if record.exc_text or record.exc_info:
            # exc_text: the traceback as MaskSecretsFilter left it.
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
