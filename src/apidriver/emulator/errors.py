"""The API's error answers: :class:`ApiError` (HTTP status, code, message, field errors) and the
422 ``INVALID_DATA`` and 404 ``NOT_FOUND`` shorthands."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer of the API: HTTP status plus the JSON error body."""

    def __init__(self, status: int, code: str, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            out["errors"] = self.errors
        return out


def invalid(errors: dict[str, list[str]]) -> ApiError:
    return ApiError(422, "INVALID_DATA", "The given data was invalid.", errors)


def not_found(what: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{what} not found.")
