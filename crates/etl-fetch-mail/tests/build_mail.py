#!/usr/bin/env python3
"""Builds a test message with Python's email package (an encoder independent
of etl-fetch-mail's decoder) and writes it to stdout.

  build_mail.py --subject S [--from F] [--date RFC2822] [--id MSGID]
                [--attach PATH[|NAME[|TYPE]]]... [--forward PATH]
"""
import argparse
import mimetypes
import sys
from email.message import EmailMessage
from email.policy import SMTP

ap = argparse.ArgumentParser()
ap.add_argument("--subject", default="report")
ap.add_argument("--from", dest="sender", default="reports@client.example")
ap.add_argument("--to", default="alice@example.test")
ap.add_argument("--date", default="Sat, 21 Nov 2026 10:00:00 +0000")
ap.add_argument("--id", default=None)
ap.add_argument("--attach", action="append", default=[])
ap.add_argument("--forward", default=None)
a = ap.parse_args()

m = EmailMessage()
m["From"] = a.sender
m["To"] = a.to
m["Subject"] = a.subject
m["Date"] = a.date
if a.id:
    m["Message-ID"] = a.id
m.set_content("Please find the report attached.\n")
for spec in a.attach:
    parts = spec.split("|")
    path = parts[0]
    name = parts[1] if len(parts) > 1 else path.rsplit("/", 1)[-1]
    ctype = parts[2] if len(parts) > 2 else (mimetypes.guess_type(name)[0] or "application/octet-stream")
    maintype, subtype = ctype.split("/", 1)
    with open(path, "rb") as f:
        m.add_attachment(f.read(), maintype=maintype, subtype=subtype, filename=name)
if a.forward:
    with open(a.forward, "rb") as f:
        from email import message_from_bytes
        inner = message_from_bytes(f.read())
    m.add_attachment(inner)
sys.stdout.buffer.write(m.as_bytes(policy=SMTP))
