"""Request bodies: how each body_format is checked, put on the wire, and shown back.

The encoded payload is what the task stores and what the receiver gets, byte for byte.
"""

import json
from urllib.parse import parse_qsl, urlencode
from xml.etree import ElementTree

CONTENT_TYPES = {
    "json": "application/json",
    "xml": "application/xml",
    "form": "application/x-www-form-urlencoded",
    "raw": "application/octet-stream",
}


class BodyError(ValueError):
    pass


def encode(body, body_format: str) -> str:
    """The API's `body` -> payload text. Raises BodyError naming what is wrong."""
    if body is None:
        return ""
    if body_format == "json":
        # Compact, key order as given: receivers that hash the body see what the caller sent.
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if body_format == "xml":
        if not isinstance(body, str):
            raise BodyError("an xml body must be a string")
        if body.strip():
            try:
                # ElementTree does not expand external entities, so parsing untrusted XML is safe here.
                ElementTree.fromstring(body)
            except ElementTree.ParseError as exc:
                raise BodyError(f"not well-formed XML: {exc}") from None
        return body
    if body_format == "form":
        if not isinstance(body, dict):
            raise BodyError("a form body must be an object of field names to values")
        pairs = []
        for name, value in body.items():
            values = value if isinstance(value, list) else [value]
            for item in values:
                if item is None or isinstance(item, dict | list):
                    raise BodyError(f"form field {name!r}: values must be strings, numbers or booleans")
                pairs.append((name, _form_value(item)))
        return urlencode(pairs)
    if body_format == "raw":
        if not isinstance(body, str):
            raise BodyError("a raw body must be a string")
        return body
    raise BodyError(f"unknown body_format {body_format!r}")


def _form_value(item) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    return str(item)


def decode(payload: str, body_format: str):
    """Payload text -> the API's `body`, for showing a task back."""
    if payload == "":
        return None
    if body_format == "json":
        return json.loads(payload)
    if body_format == "form":
        shown: dict = {}
        for name, value in parse_qsl(payload, keep_blank_values=True):
            if name in shown:
                existing = shown[name]
                shown[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
            else:
                shown[name] = value
        return shown
    return payload


def content_type(body_format: str, headers: dict) -> str:
    """The Content-Type to send: the caller's own for raw (and xml) bodies, else the format's."""
    for name, value in headers.items():
        if name.lower() == "content-type" and body_format in ("raw", "xml"):
            return value
    return CONTENT_TYPES[body_format]
