"""Sending one message over SMTP (`SMTP_URL`: smtp://[user:password@]host:port, or smtps://),
step by step so the caller can record the moment the message is handed over."""

import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, parseaddr
from urllib.parse import unquote, urlsplit


class DeliveryError(Exception):
    """An attempt that did not deliver: permanent (a 5xx refusal) or worth retrying; `uncertain`
    when the connection broke after the message was handed over (it may have arrived)."""

    def __init__(self, message: str, *, permanent: bool = False, uncertain: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.uncertain = uncertain


def message_build(
    *,
    outbox_id,
    sender: str,
    to_address: str,
    subject: str,
    body: str,
    pdf: tuple[str, bytes] | None = None,
):
    """The message as sent, with `pdf` (file name, bytes) attached if given; its Message-ID is
    derived from the outbox id."""
    message = EmailMessage(policy=SMTP)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = f"<{outbox_id}@{domain}>"
    message["Date"] = formatdate(localtime=False)
    message["From"] = sender
    message["To"] = to_address
    message["Subject"] = subject
    message.set_content(body)
    if pdf is not None:
        filename, content = pdf
        message.add_attachment(content, maintype="application", subtype="pdf", filename=filename)
    return message


def _connect(url: str, timeout: int) -> smtplib.SMTP:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise DeliveryError(f"SMTP_URL no válido: {parts.scheme}://{parts.hostname}")
    connection_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    port = parts.port or (465 if parts.scheme == "smtps" else 25)
    connection = connection_class(parts.hostname, port, timeout=timeout)
    if parts.username:
        connection.login(unquote(parts.username), unquote(parts.password or ""))
    return connection


def _refusal(code: int, reply: bytes, step: str) -> DeliveryError:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return DeliveryError(f"{step}: {code} {text}"[:1000], permanent=500 <= code < 600)


def smtp_send(
    message: EmailMessage, *, url: str, timeout: int, handing_over: Callable[[], None]
) -> None:
    """Deliver one message; `handing_over()` runs just before DATA. DeliveryError otherwise."""
    sender, recipient = parseaddr(message["From"])[1], message["To"]
    handed_over = False
    try:
        connection = _connect(url, timeout)
        try:
            connection.ehlo_or_helo_if_needed()
            code, reply = connection.mail(sender)
            if code != 250:
                raise _refusal(code, reply, "MAIL FROM")
            code, reply = connection.rcpt(recipient)
            if code not in (250, 251):
                raise _refusal(code, reply, "RCPT TO")
            handing_over()
            handed_over = True
            connection.data(message.as_bytes())  # SMTPDataError unless accepted
        finally:
            connection.close()  # no QUIT: once accepted, nothing after may fail the delivery
    except smtplib.SMTPResponseException as error:  # a definite answer: not accepted
        raise _refusal(error.smtp_code, error.smtp_error, "SMTP") from error
    except (smtplib.SMTPException, OSError) as error:
        text = str(error)[:1000] or type(error).__name__
        raise DeliveryError(text, uncertain=handed_over) from error
