#!/usr/bin/python3
"""A real SMTP server for the end-to-end tests (aiosmtpd), and the parser that reads what it got.

    smtp_sink.py OUT_DIR [PORT]  listen on 127.0.0.1 on PORT, or one the kernel picks; print
                                 "port N" on stdout once accepting; write every message received
                                 as OUT_DIR/<n>.json (n = 1, 2, ...), atomically (temp file, then
                                 rename)
    smtp_sink.py --parse FILE  print the JSON for one message file (an .eml from the outbox)

The JSON: {mail_from, rcpt_tos, from, from_name, from_address, to, subject, html, text}
  mail_from, rcpt_tos: the SMTP envelope (null/[] for --parse)
  from: the From header as it was sent (unfolded, not decoded)
  from_name, from_address: the From header parsed (RFC 2047 words decoded)
  to, subject: decoded header values
  html, text: the decoded bodies of the text/html and text/plain parts ("" if absent)

Stops on SIGTERM or SIGINT. Run it with /usr/bin/python3 (Debian's python3-aiosmtpd).
"""

import asyncio
import email
import email.policy
import json
import os
import signal
import socket
import sys


def parse(raw: bytes, mail_from=None, rcpt_tos=()):
    raw_msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    raw_from = raw_msg.get("From", "")
    raw_from = "".join(line.lstrip(" \t") if i else line for i, line in enumerate(str(raw_from).splitlines()))
    from_name, from_address = "", ""
    header = msg["From"]
    if header is not None and getattr(header, "addresses", None):
        from_name = header.addresses[0].display_name
        from_address = header.addresses[0].addr_spec
    out = {
        "mail_from": mail_from,
        "rcpt_tos": list(rcpt_tos),
        "from": raw_from,
        "from_name": from_name,
        "from_address": from_address,
        "to": str(msg.get("To", "")),
        "subject": str(msg.get("Subject", "")),
        "html": "",
        "text": "",
    }
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype == "text/html":
            out["html"] += part.get_content()
        elif ctype == "text/plain":
            out["text"] += part.get_content()
    return out


class Sink:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        data = parse(envelope.original_content or envelope.content, envelope.mail_from, envelope.rcpt_tos)
        final = os.path.join(self.out_dir, "%d.json" % self.count)
        temp = os.path.join(self.out_dir, ".%d.tmp" % self.count)
        with open(temp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.rename(temp, final)
        return "250 Message accepted for delivery"


async def serve(out_dir, port):
    from aiosmtpd.smtp import SMTP

    os.makedirs(out_dir, exist_ok=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    handler = Sink(out_dir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="sink.test"), sock=sock)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("port %d" % sock.getsockname()[1], flush=True)
    await stop.wait()
    server.close()


def main(argv):
    if len(argv) == 3 and argv[1] == "--parse":
        with open(argv[2], "rb") as f:
            json.dump(parse(f.read()), sys.stdout)
        sys.stdout.write("\n")
        return 0
    if len(argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    asyncio.run(serve(argv[1], int(argv[2]) if len(argv) == 3 else 0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
