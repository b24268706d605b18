"""The one form reader every action uses: whatever arrives, a clear 4xx, never a 500.

`await read_form(request)` gives a `Form`: typed getters that turn what a browser (or a
fuzzer) sent into values, and record a readable message per field when it is wrong —
empty, too long, a NUL byte or other characters nobody can type, a number past the
database's integer range, a file where text was expected. A body that cannot be parsed at
all (a multipart without a boundary, too many fields, a part too large) is a 400 with a
sentence, one too big to read a 413: raised by `parse_form`, which the CSRF check uses to
read the form before us (it leaves the parsed form in the scope for `read_form`).

A handler reads its fields, and if `form.errors` is not empty, answers with the form again
(422, values kept): nothing has been written yet.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import FormParser, MultiPartParser
from starlette.requests import Request

from tables.values import INT_MAX, row_id  # an id: 1 to PostgreSQL's integer maximum

# ASCII digits only: str.isdigit() also takes "²" and "١٢", which int() refuses or reads.
WHOLE_NUMBER = re.compile(r"-?[0-9]{1,11}")
MAX_FIELDS = 1000
MAX_PART_SIZE = 1024 * 1024
# No form here takes files or pages of text: anything bigger is refused (413) unread.
MAX_BODY_SIZE = 2 * MAX_PART_SIZE


class FormErrors(dict[str, str]):
    """Field name -> message, rendered beside the field by the `field` macro."""

    def add(self, field: str, message: str) -> None:
        self.setdefault(field, message)


def typeable(text: str) -> bool:
    """No NUL bytes or other control characters (tabs and newlines are fine)."""
    return all(ch in "\t\n\r" or (ord(ch) >= 32 and ord(ch) != 127) for ch in text)


class Form:
    """A posted form with its values as typed (`values`, for re-rendering) and its errors."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.errors = FormErrors()
        self.values: dict[str, str] = {}

    def as_typed(self) -> dict[str, str]:
        """Every text field as sent, for showing a refused form again."""
        return {k: v for k, v in self.data.items() if isinstance(v, str)}

    def raw(self, name: str) -> str:
        """The field as sent, '' when missing; a file is recorded as an error."""
        value = self.data.get(name)
        if isinstance(value, UploadFile):
            self.errors.add(name, "Type this in; a file cannot go here.")
            return ""
        text = value if isinstance(value, str) else ""
        self.values[name] = text
        return text

    def text(
        self,
        name: str,
        *,
        label: str,
        max_length: int,
        required: bool = True,
        multiline: bool = False,
    ) -> str:
        """A text value, stripped (one line unless `multiline`); '' with an error when bad."""
        value = self.raw(name).strip()
        if not value:
            if required:
                self.errors.add(name, f"Enter {label}.")
            return ""
        if len(value) > max_length:
            self.errors.add(
                name,
                f"{label[0].upper()}{label[1:]} is too long (at most {max_length:,} characters).",
            )
            return ""
        if not typeable(value) or (not multiline and any(ch in "\n\r" for ch in value)):
            self.errors.add(
                name, f"{label[0].upper()}{label[1:]} has characters that cannot be typed."
            )
            return ""
        return value

    def integer(
        self,
        name: str,
        *,
        label: str,
        minimum: int = 0,
        maximum: int = INT_MAX,
        required: bool = True,
    ) -> int | None:
        """A whole number in [minimum, maximum]; None (with an error when required) if not."""
        text = self.raw(name).strip()
        if not text:
            if required:
                self.errors.add(name, f"Enter {label}.")
            return None
        if not WHOLE_NUMBER.fullmatch(text):
            self.errors.add(name, f"{label[0].upper()}{label[1:]} must be a whole number.")
            return None
        number = int(text)
        if not minimum <= number <= maximum:
            self.errors.add(
                name, f"{label[0].upper()}{label[1:]} must be between {minimum:,} and {maximum:,}."
            )
            return None
        return number

    def id(self, name: str, *, required: bool = True) -> int | None:
        """A row id chosen on the page (a select, a hidden field)."""
        return self.integer(name, label="a choice", minimum=1, required=required)

    def all(self, name: str) -> list[str]:
        """Every value sent under `name` (ticked boxes), as text; files are left out."""
        raw = self.data.getlist(name) if isinstance(self.data, FormData) else []
        return [value for value in raw if isinstance(value, str)]

    def ids(self, name: str) -> list[int]:
        """Every ticked id; anything that cannot name a row is an error, not a 500."""
        raw = self.data.getlist(name) if isinstance(self.data, FormData) else []
        ids: list[int] = []
        for value in raw:
            if (number := row_id(value if isinstance(value, str) else None)) is None:
                self.errors.add(name, "Those choices could not be read. Reload the page.")
                return []
            ids.append(number)
        return ids


async def read_form(request: Request) -> Form:
    """The posted form, parsed once (the CSRF check may have parsed it already).

    Bodies that cannot be parsed answer 400 with a sentence; no handler sees them.
    """
    data = request.scope.get("form")
    if data is None:
        data = await parse_form(request)
    return Form(data)


async def parse_form(request: Request) -> FormData:
    """The posted form with our limits, left in the scope for whoever reads it next.

    Every failure is an HTTPException a caller can show as a page, never a 500: 400 for a
    body that cannot be parsed (no multipart boundary, more than `MAX_FIELDS` fields, a part
    over `MAX_PART_SIZE`, broken multipart), 413 for a body over `MAX_BODY_SIZE`, refused
    from its Content-Length before anything is read, or once that much has arrived when it
    has none. A body that is not a form (JSON, text) is not read: the form is empty.
    """
    content_type, _ = parse_options_header(request.headers.get("content-type") or "")
    form: FormData
    if content_type not in FORM_TYPES:
        form = FormData()
    else:
        length = request.headers.get("content-length")
        if length is not None and not (length.isascii() and length.isdigit()):
            raise HTTPException(400, UNREADABLE)
        if length is not None and int(length) > MAX_BODY_SIZE:
            raise HTTPException(413, TOO_LARGE)
        parser: FormParser | MultiPartParser
        try:
            async with aclosing(_at_most(request.stream(), MAX_BODY_SIZE)) as stream:
                if content_type == b"multipart/form-data":
                    parser = MultiPartParser(
                        request.headers,
                        stream,
                        max_files=MAX_FIELDS,
                        max_fields=MAX_FIELDS,
                        max_part_size=MAX_PART_SIZE,
                    )
                else:
                    parser = FormParser(
                        request.headers,
                        stream,
                        max_fields=MAX_FIELDS,
                        max_part_size=MAX_PART_SIZE,
                    )
                form = await parser.parse()
        except _TooLarge:
            raise HTTPException(413, TOO_LARGE) from None
        except Exception:  # multipart's own errors, a broken encoding, a truncated body
            raise HTTPException(400, UNREADABLE) from None
    request.scope["form"] = form
    return form


FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")
UNREADABLE = "That form could not be read. Reload the page and try again."
TOO_LARGE = "That was more than any form here takes. Shorten what you entered and try again."


class _TooLarge(Exception):
    pass


async def _at_most(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > limit:
            raise _TooLarge
        yield chunk
