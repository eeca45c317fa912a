"""A real SMTP relay for cocreate's tests, on aiosmtpd (Debian python3-aiosmtpd).

    /usr/bin/python3 tests/support/smtp_sink.py PORT OUTDIR

Every accepted message is written to OUTDIR as NNNNNN.eml, with the envelope
in NNNNNN.json beside it (written first, the .eml renamed into place last, so
a reader never sees half a message). Recipients whose local part starts with
`reject` are refused with 550 at RCPT; those starting with `later` get 451 on
their first attempt and 250 afterwards; a message to one starting with
`toobig` is refused with 552 at the end of DATA. While a file named
`refuse-sender` exists in OUTDIR, MAIL FROM is refused with 550. With
`--auth`, AUTH is required (any user and password) and refused with 535 while
a file named `refuse-auth` exists in OUTDIR. With `--delay SECONDS`, each
message is answered that long after its DATA ends (a slow relay; sessions
still run side by side). With `--bounce-lmtp PORT`, a message to a recipient
whose local part starts with `gone` is accepted and then, a moment later,
bounced as a relay does: a delivery status notification (RFC 3464, without
the original's headers) to the message's envelope sender, delivered over
LMTP to 127.0.0.1:PORT. Prints "ready" once listening.
"""

import asyncio
import json
import os
import smtplib
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def dsn(sender, recipient, number):
    return (
        "From: Mail Delivery System <MAILER-DAEMON@relay.example>\r\n"
        "To: %s\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-%d@relay.example>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n"
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
        "This is the mail system at host relay.example.\r\n"
        "Your message could not be delivered to one or more recipients.\r\n"
        "\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; relay.example\r\n\r\n"
        "Final-Recipient: rfc822; %s\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <%s>: mailbox unknown\r\n"
        "\r\n--b--\r\n" % (sender, number, recipient, recipient)
    ).encode()


def deliver_lmtp(port, sender, data):
    with smtplib.LMTP("127.0.0.1", port) as lmtp:
        lmtp.sendmail("<>", [sender], data)


class Handler:
    def __init__(self, out, delay, bounce_port):
        self.out = out
        self.delay = delay
        self.bounce_port = bounce_port
        self.count = 0
        self.bounced = 0
        self.deferred = set()

    async def bounce_later(self, sender, recipient):
        await asyncio.sleep(0.5)
        self.bounced += 1
        data = dsn(sender, recipient, self.bounced)
        await asyncio.get_running_loop().run_in_executor(
            None, deliver_lmtp, self.bounce_port, sender, data)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if os.path.exists(os.path.join(self.out, "refuse-sender")):
            return "550 5.7.1 <%s>: sender address rejected" % address
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if local.startswith("later") and address not in self.deferred:
            self.deferred.add(address)
            return "451 4.7.1 <%s>: greylisted, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(r.split("@")[0].lower().startswith("toobig") for r in envelope.rcpt_tos):
            return "552 5.3.4 message size exceeds fixed maximum message size"
        if self.delay:
            await asyncio.sleep(self.delay)
        self.count += 1
        base = os.path.join(self.out, "%06d" % self.count)
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".tmp", base + ".eml")
        if self.bounce_port and envelope.mail_from and envelope.mail_from != "<>":
            for r in envelope.rcpt_tos:
                if r.split("@")[0].lower().startswith("gone"):
                    asyncio.ensure_future(self.bounce_later(envelope.mail_from, r))
        return "250 2.0.0 Message accepted"


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    auth = {}
    if "--auth" in sys.argv[3:]:
        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = not os.path.exists(os.path.join(out, "refuse-auth"))
            return AuthResult(success=ok, handled=False)
        auth = dict(authenticator=authenticator, auth_required=True,
                    auth_require_tls=False)
    args = sys.argv[3:]
    delay = float(args[args.index("--delay") + 1]) if "--delay" in args else 0.0
    bounce_port = int(args[args.index("--bounce-lmtp") + 1]) if "--bounce-lmtp" in args else 0
    controller = Controller(Handler(out, delay, bounce_port), hostname="127.0.0.1", port=port,
                            data_size_limit=50 * 1024 * 1024, **auth)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
