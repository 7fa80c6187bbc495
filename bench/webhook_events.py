#!/usr/bin/python3
"""Signed Stripe events for bench/webhooks.sh (Debian's python3, standard library only).

  webhook_events.py checkout ENTITIES SEED OUT
  webhook_events.py measured ENTITIES SEED OUT [DUP_FRACTION]

The secret comes from the environment (STRIPE_WEBHOOK_SECRET), so that it is not on a command
line. OUT gets one delivery per line: `<Stripe-Signature>\\t<body>`, the body compact JSON (no tab,
no newline), signed now (t = this second: billing refuses signatures older than 300 s, so the
script generates each file right before the run that sends it). The bodies depend only on
ENTITIES and SEED: every server of one run gets the same bytes, only t and v1 differ.

checkout: one checkout.session.completed per hospital, in entity order.
measured: an invoice.payment_succeeded and an invoice.payment_failed per hospital, 10%
  (DUP_FRACTION) of them delivered twice (the same id and bytes), everything shuffled. The two
  invoices of a hospital have distinct `created` values, the newer one picked at random, both
  newer than the checkout, so the plan's final status is the newer invoice's (active if the
  payment is newer, suspended if the failure is), whatever the order they arrive in. Also writes
  OUT.ids (the distinct event ids, sorted) and OUT.json (the counts the checks expect).
"""
import hashlib
import hmac
import json
import os
import random
import sys
import time

CHECKOUT_CREATED = 1_700_000_000  # fixed: the bodies do not depend on the clock
INVOICE_CREATED = CHECKOUT_CREATED + 3600
META = {"role": "hospital", "plan": "lite", "cycle": "monthly"}


def hospital(n):
    return f"hosp-bench-{n:05d}"


def metadata(n):
    return {"role": "hospital", "role_entity_id": hospital(n), "plan": META["plan"], "cycle": META["cycle"]}


def event(event_id, event_type, created, obj):
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2023-10-16",
        "created": created,
        "livemode": False,
        "type": event_type,
        "data": {"object": obj},
    }


def checkout(n):
    return event(f"evt_bench_cs_{n:05d}", "checkout.session.completed", CHECKOUT_CREATED, {
        "id": f"cs_bench_{n:05d}",
        "object": "checkout.session",
        "payment_status": "paid",
        "customer": f"cus_{n}",
        "subscription": f"sub_{n}",
        "metadata": metadata(n),
    })


def invoice(n, paid, created):
    kind = "paid" if paid else "failed"
    return event(f"evt_bench_in_{kind}_{n:05d}",
                 "invoice.payment_succeeded" if paid else "invoice.payment_failed", created, {
                     "id": f"in_bench_{kind}_{n:05d}",
                     "object": "invoice",
                     "created": created,
                     "customer": f"cus_{n}",
                     "subscription": f"sub_{n}",
                     "amount_paid": 49900 if paid else 0,
                     "amount_due": 49900,
                     "currency": "usd",
                     "status": "paid" if paid else "open",
                     "subscription_details": {"metadata": metadata(n)},
                     "lines": {"data": [{"price": {"id": "price_local_hospital_lite_monthly"}}]},
                 })


def body(e):
    return json.dumps(e, separators=(",", ":"), ensure_ascii=True)


def main(argv):
    if len(argv) not in (5, 6) or argv[1] not in ("checkout", "measured"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, entities, seed, out = argv[1], int(argv[2]), int(argv[3]), argv[4]
    dup_fraction = float(argv[5]) if len(argv) == 6 else 0.10
    secret = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
    if not secret or entities < 1:
        print("webhook_events.py: STRIPE_WEBHOOK_SECRET must be set and ENTITIES >= 1", file=sys.stderr)
        return 2
    rng = random.Random(seed)

    if kind == "checkout":
        bodies = [body(checkout(n)) for n in range(1, entities + 1)]
    else:
        unique = []
        active = 0
        for n in range(1, entities + 1):
            paid_newer = rng.random() < 0.5
            active += paid_newer
            unique.append(body(invoice(n, True, INVOICE_CREATED + (1 if paid_newer else 0))))
            unique.append(body(invoice(n, False, INVOICE_CREATED + (0 if paid_newer else 1))))
        duplicates = rng.sample(unique, round(len(unique) * dup_fraction))
        bodies = unique + duplicates
        rng.shuffle(bodies)
        ids = sorted(json.loads(b)["id"] for b in unique)
        with open(out + ".ids", "w", encoding="ascii") as f:
            f.write("\n".join(ids) + "\n")
        with open(out + ".json", "w", encoding="ascii") as f:
            json.dump({"entities": entities, "unique": len(unique), "duplicates": len(duplicates),
                       "deliveries": len(bodies), "paid": entities, "expect_active": active,
                       "expect_suspended": entities - active}, f)

    t = str(int(time.time()))
    key = secret.encode()
    with open(out, "w", encoding="ascii") as f:
        for b in bodies:
            v1 = hmac.new(key, f"{t}.{b}".encode(), hashlib.sha256).hexdigest()
            f.write(f"t={t},v1={v1}\t{b}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
