"""The application's one error type; the API turns it into the agreed JSON error shape."""


class ApplicationError(Exception):
    """A request we refuse, with a machine-readable code and, for invalid input, the fields at fault."""

    status = 400

    def __init__(
        self, message: str, *, code: str = "invalid", fields: dict | None = None, status: int | None = None
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.fields = fields or {}
        if status is not None:
            self.status = status


class ConflictError(ApplicationError):
    status = 409

    def __init__(self, message: str, *, code: str = "conflict", fields: dict | None = None):
        super().__init__(message, code=code, fields=fields)


class NotFoundError(ApplicationError):
    status = 404

    def __init__(self, message: str = "Not found.", *, code: str = "not_found"):
        super().__init__(message, code=code)


class UnknownParametersError(ApplicationError):
    """Query parameters an operation does not take, refused as unknown body fields are: a misspelt filter
    must not return everything."""

    def __init__(self, names):
        names = sorted(names)
        super().__init__(
            f"Unknown query parameter: {', '.join(names)}.",
            code="unknown_parameter",
            fields={name: ["unknown query parameter"] for name in names},
        )


def refuse_unknown_parameters(given, *, declared: dict, method: str) -> None:
    """UnknownParametersError unless every name `given` is one `declared` for the method (HEAD as GET)."""
    unknown = set(given) - set(declared.get("GET" if method == "HEAD" else method, ()))
    if unknown:
        raise UnknownParametersError(unknown)
