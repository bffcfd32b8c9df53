"""KMS errors as boto3 and the AWS SDK for Rust parse them: ``{"__type": code, "message": msg}``."""

from __future__ import annotations

from moto.core.exceptions import JsonRESTError


def error(code: str, message: str, status: int = 400) -> JsonRESTError:
    err = JsonRESTError(code, message)
    err.code = status
    return err


def store_not_found(what: str) -> JsonRESTError:
    return error("CustomKeyStoreNotFoundException", f"Custom key store {what} does not exist.")


def invalid_state(store_id: str, state: str, operation: str) -> JsonRESTError:
    return error(
        "CustomKeyStoreInvalidStateException",
        f"{operation} is not valid for custom key store {store_id} "
        f"in connection state {state}.",
    )


def validation(field: str, constraint: str) -> JsonRESTError:
    # The shape of AWS's request-validation messages; the value itself is never echoed
    # (KeyStorePassword is sensitive).
    return error(
        "ValidationException",
        f"1 validation error detected: Value at '{field}' failed to satisfy constraint: {constraint}",
    )
