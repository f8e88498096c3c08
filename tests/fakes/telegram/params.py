"""Reading Bot API parameters from the query string, form, multipart or JSON bodies (platforms.md §1.1)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes.telegram.errors import ApiError, bad_request
from tests.fakes.telegram.records import UploadedFile

# Fields that hold objects or arrays. In form and multipart bodies they arrive as JSON strings; the
# label is how the server names them when they do not parse.
JSON_FIELDS = {
    "allowed_updates": "allowed updates",
    "reply_parameters": "reply parameters",
    "reply_markup": "reply keyboard markup",
    "entities": "entities",
    "caption_entities": "caption entities",
    "message_ids": "message identifiers",
    "link_preview_options": "link preview options",
}


class Params:
    """One call's parameters, whatever encoding they came in, with the server's lenient conversions."""

    def __init__(self, values: dict[str, Any], files: dict[str, UploadedFile] | None = None) -> None:
        self.values = values
        self.files = files or {}

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def get_str(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value)

    def get_int(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise bad_request(f"invalid {name} specified") from None

    def get_bool(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        return isinstance(value, str) and value.strip().lower() in ("true", "1")

    def get_json(self, name: str) -> Any:
        return self.values.get(name)

    def chat_id(self) -> int | str:
        """A chat id (int) or a public ``@username``."""
        value = self.values.get("chat_id")
        if value is None or value == "":
            raise bad_request("chat_id is empty")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        if text.startswith("@"):
            return text
        try:
            return int(text)
        except ValueError:
            raise bad_request("chat not found") from None

    def user_id(self) -> int:
        user_id = self.get_int("user_id")
        if user_id is None or user_id <= 0:
            raise bad_request("invalid user_id specified")
        return user_id

    def message_id(self) -> int:
        message_id = self.get_int("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        return message_id


async def read_params(request: web.Request) -> Params:
    """Merge the query string and the body (body wins), then parse JSON-in-form fields."""
    values: dict[str, Any] = {}
    for key, value in request.query.items():
        values.setdefault(key, value)
    files: dict[str, UploadedFile] = {}
    if request.body_exists:
        content_type = request.content_type
        if content_type == "application/json":
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise bad_request("can't parse JSON encoded request") from None
                if isinstance(body, dict):
                    values.update(body)
        elif content_type == "application/x-www-form-urlencoded":
            form = await request.post()
            values.update({key: str(value) for key, value in form.items()})
        elif content_type == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    files[part.name] = UploadedFile(
                        part.filename, part.headers.get("Content-Type", ""), bytes(await part.read())
                    )
                else:
                    values[part.name] = await part.text()
    for name, label in JSON_FIELDS.items():
        field = values.get(name)
        if isinstance(field, str):
            values[name] = _parse_json_field(field, label)
    return Params(values, files)


def _parse_json_field(value: str, label: str) -> Any:
    if value.strip() == "":
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise ApiError(400, f"Bad Request: can't parse {label} JSON object") from None
