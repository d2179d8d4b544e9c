"""Development only: a local SMTP server that keeps every message it receives in a Maildir
(`make run` starts it and points SMTP_URL at it; /dev/mail shows what it caught)."""

import email
import email.policy
import mailbox
from pathlib import Path

SINK_HOST = "127.0.0.1"


def sink_start(directory: Path, port: int):
    """Start the sink on 127.0.0.1:port in a thread; the aiosmtpd Controller (call .stop())."""
    from aiosmtpd.controller import Controller  # a development dependency
    from aiosmtpd.handlers import Mailbox

    for folder in ("tmp", "new", "cur"):  # a Maildir, even in a directory that already exists
        (directory / folder).mkdir(parents=True, exist_ok=True)
    controller = Controller(Mailbox(str(directory)), hostname=SINK_HOST, port=port)
    controller.start()
    return controller


def sink_messages(directory: Path, *, limit: int | None = None) -> list:
    """The messages the sink caught, newest first, headers decoded (email.policy.default)."""
    if not (directory / "cur").is_dir():
        return []
    box = mailbox.Maildir(
        str(directory),
        factory=lambda file: email.message_from_binary_file(file, policy=email.policy.default),
        create=False,
    )
    messages = sorted(box, key=lambda message: message["Date"].datetime, reverse=True)
    return messages[:limit]
