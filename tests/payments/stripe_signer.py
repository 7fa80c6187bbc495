#!/usr/bin/python3
"""Stripe's own webhook signer and verifier (Debian's python3-stripe), for the tests.

  stripe_signer.py sign SECRET PAYLOAD_FILE T     prints the Stripe-Signature header Stripe makes
  stripe_signer.py verify SECRET PAYLOAD_FILE HEADER
                                                  exits 0 if Stripe's library accepts it, else 1
"""
import sys

from stripe import error
from stripe.webhook import WebhookSignature


def main(argv):
    command, secret, payload_file, last = argv[1:5]
    with open(payload_file, encoding="utf-8") as f:
        payload = f.read()
    if command == "sign":
        signature = WebhookSignature._compute_signature(f"{last}.{payload}", secret)
        print(f"t={last},v1={signature}")
        return 0
    try:
        WebhookSignature.verify_header(payload, last, secret, tolerance=300)
        return 0
    except error.SignatureVerificationError as refused:
        print(refused, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
